// The Lifecycle Workflows relay: a Consumption Logic App that LCW's custom task extension calls, and that
// forwards the callout to the lcw-joiner function.
//
// Why a relay: LCW custom task extensions can only call Consumption Logic Apps
// (https://learn.microsoft.com/entra/id-governance/lifecycle-workflow-extensibility), and the PoP token
// LCW sends is bound to this Logic App's ARM resource, so only Logic Apps can validate it
// (research lcw-graph.md §0, §2.2).
//
//   LCW ──PoP token──▶ Request trigger (AADPOP policy, SAS disabled, "PoP" header condition)
//                      ├─ Response 202 (at once: LCW's own HTTP timeout is 1–2 s)
//                      └─ HTTP POST @triggerBody() ─▶ https://<app>/api/lcw-joiner
//                           x-functions-key + bearer token of this Logic App's managed identity
//                           (audience = ENRICH_AUDIENCE), retried on 408/429/5xx
//   lcw-joiner enriches the subject and calls LCW resume itself (its identity is in authorizedApps).
//
// Deployed after the function code (infra/deploy.sh): it reads the app's default function key with
// listKeys, which needs the function to exist.
//
// API versions: Microsoft.Logic/workflows 2019-05-01; Microsoft.Web/sites 2024-04-01 (existing).

@description('Prefix of every resource name (as in main.bicep).')
param namePrefix string

@description('Logic App name. The LCW PoP policy\'s "p" claim names it.')
param workflowName string = '${namePrefix}-lcw-relay'

param location string = resourceGroup().location

@description('Tenant whose LCW calls are accepted (iss claim).')
param tenantId string = tenant().tenantId

@description('The function app (main.bicep output functionAppName).')
param functionAppName string

@description('Audience of the token the relay requests for the function (main.bicep output audience = ENRICH_AUDIENCE).')
param audience string

@description('Lifecycle Workflows\' first-party app id: "The appid value represents Lifecycle Workflows and is always the same" (https://learn.microsoft.com/entra/id-governance/configure-logic-app-lifecycle-workflows).')
param lifecycleWorkflowsAppId string = 'ce79fdc4-cd1d-4ea5-8139-e74d7dbe0bb7'

@description('Also require aud = https://management.azure.com in the PoP token, as the current LCW Logic App docs configure. Set false only if LCW calls fail with 401 and the run history shows an aud mismatch.')
param requireManagementAudience bool = true

param tags object = {
  app: 'entra-enrich'
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// The ARM path LCW's PoP token is bound to ("p" claim).
var workflowArmPath = '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.Logic/workflows/${workflowName}'

// Claims of the AADPOP policy, exactly as Microsoft configures them for LCW:
// https://learn.microsoft.com/entra/id-governance/configure-logic-app-lifecycle-workflows
// (iss needs the trailing slash; appid is lowercase; u is the host only; m is POST).
var popClaimsBase = [
  {
    name: 'iss'
    value: 'https://sts.windows.net/${tenantId}/'
  }
  {
    name: 'appid'
    value: lifecycleWorkflowsAppId
  }
  {
    name: 'm'
    value: 'POST'
  }
  {
    name: 'u'
    value: 'management.azure.com'
  }
  {
    name: 'p'
    value: workflowArmPath
  }
]
var audienceClaim = [
  {
    name: 'aud'
    value: 'https://management.azure.com'
  }
]
var popClaims = requireManagementAudience ? concat(popClaimsBase, audienceClaim) : popClaimsBase

// The app's default *function* key (host scope: valid for the function-level functions lcw-joiner and
// health; not the master key, which also opens the admin API). listKeys on host/default returns
// { masterKey, functionKeys: { default }, systemKeys }
// (https://learn.microsoft.com/rest/api/appservice/web-apps/list-host-keys;
// https://learn.microsoft.com/azure/azure-functions/function-keys-how-to#understand-keys). The host
// must be running with the code deployed, which is why this template is deployed after the code.
var lcwJoinerKey = listKeys('${functionApp.id}/host/default', '2024-04-01').functionKeys.default

resource relay 'Microsoft.Logic/workflows@2019-05-01' = {
  name: workflowName
  location: location
  tags: tags
  // System-assigned identity: the HTTP action authenticates to the function with it
  // (https://learn.microsoft.com/azure/logic-apps/authenticate-with-managed-identity).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    state: 'Enabled'
    // any(): sasAuthenticationPolicy is newer than the 2019-05-01 Bicep type definition.
    accessControl: any({
      triggers: {
        // SAS off: the callback URL's sig can no longer bypass the PoP policy. Microsoft disables it by
        // default for LCW Logic Apps created after 2024-04-29 and asks to disable it on older ones
        // (https://learn.microsoft.com/entra/id-governance/custom-extension-security;
        // https://learn.microsoft.com/azure/logic-apps/logic-apps-securing-a-logic-app#disable-shared-access-signature-sas-authentication-consumption-only).
        sasAuthenticationPolicy: {
          state: 'Disabled'
        }
        // https://learn.microsoft.com/azure/logic-apps/logic-apps-securing-a-logic-app#enable-oauth-with-microsoft-entra-id
        openAuthenticationPolicies: {
          policies: {
            AzureADLifecycleWorkflowsAuthPOPAuthPolicy: {
              type: 'AADPOP'
              claims: popClaims
            }
          }
        }
      }
    })
    parameters: {
      functionUrl: {
        value: 'https://${functionApp.properties.defaultHostName}/api/lcw-joiner'
      }
      functionKey: {
        value: lcwJoinerKey
      }
      audience: {
        value: audience
      }
    }
    definition: {
      '$schema': 'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#'
      contentVersion: '1.0.0.0'
      parameters: {
        functionUrl: {
          type: 'String'
        }
        // securestring: not shown in the designer or run history
        // (https://learn.microsoft.com/azure/logic-apps/logic-apps-securing-a-logic-app#secure-action-parameters).
        functionKey: {
          type: 'SecureString'
        }
        audience: {
          type: 'String'
        }
      }
      triggers: {
        manual: {
          type: 'Request'
          kind: 'Http'
          inputs: {
            method: 'POST'
            // LCW's callout schema (https://learn.microsoft.com/entra/id-governance/configure-logic-app-lifecycle-workflows).
            schema: {
              type: 'object'
              properties: {
                source: {
                  type: 'string'
                }
                type: {
                  type: 'string'
                }
                data: {
                  type: 'object'
                  properties: {
                    callbackUriPath: {
                      type: 'string'
                    }
                    subject: {
                      type: 'object'
                    }
                    task: {
                      type: 'object'
                    }
                    taskProcessingResult: {
                      type: 'object'
                    }
                    workflow: {
                      type: 'object'
                    }
                  }
                }
              }
            }
          }
          /* Only a PoP-authenticated call starts a run. Practitioners found AADPOP policies not enforced
             on their own (https://github.com/Azure/logicapps/issues/809; the fix requested in
             https://github.com/MicrosoftDocs/azure-docs/issues/110987 is this condition). The header is
             visible to the condition only with IncludeAuthorizationHeadersInOutputs
             (https://learn.microsoft.com/azure/logic-apps/logic-apps-securing-a-logic-app#include-authorization-header-in-request-or-http-webhook-trigger-outputs). */
          conditions: [
            {
              expression: '@startsWith(triggerOutputs()?[\'headers\']?[\'Authorization\'], \'PoP\')'
            }
          ]
          operationOptions: 'IncludeAuthorizationHeadersInOutputs'
          // The callout carries the subject's name and email, and the outputs now hold the PoP token:
          // keep both out of run history
          // (https://learn.microsoft.com/azure/logic-apps/logic-apps-securing-a-logic-app#secure-data-in-run-history-by-using-obfuscation).
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
                'outputs'
              ]
            }
          }
        }
      }
      actions: {
        // Answer LCW at once: its request to the Logic App times out after 1–2 s
        // (clientConfiguration.timeoutInMilliseconds), and "launch and wait" completes through resume,
        // not through this response. 202 is also what a Logic App without a Response action returns
        // (https://learn.microsoft.com/azure/connectors/connectors-native-reqres).
        Accept: {
          type: 'Response'
          kind: 'Http'
          runAfter: {}
          inputs: {
            statusCode: 202
          }
        }
        Forward_to_lcw_joiner: {
          type: 'Http'
          runAfter: {
            Accept: [
              'Succeeded'
            ]
          }
          inputs: {
            method: 'POST'
            uri: '@parameters(\'functionUrl\')'
            headers: {
              'Content-Type': 'application/json'
              'x-functions-key': '@parameters(\'functionKey\')'
            }
            body: '@triggerBody()'
            // https://learn.microsoft.com/azure/logic-apps/authenticate-with-managed-identity?tabs=consumption#authenticate-access-with-managed-identity
            authentication: {
              type: 'ManagedServiceIdentity'
              audience: '@parameters(\'audience\')'
            }
            /* lcw-joiner answers 503 + Retry-After: 30 on transient failures (throttling, Graph 5xx). The
               retry policy resends on 408, 429 and 5xx
               (https://learn.microsoft.com/azure/logic-apps/logic-apps-exception-handling#retry-policies).
               The Logic Apps docs do not say the engine reads Retry-After, so the first retry waits at
               least the 30 s the function asks for, and the wait grows exponentially up to 2 min.
               Worst case: 5 attempts × 1 min timeout + ~5.5 min of waits ≈ 11 min, inside a custom task
               extension timeoutDuration of PT30M (set that; the minimum PT5M is too short for retries). */
            retryPolicy: {
              type: 'exponential'
              count: 4
              interval: 'PT30S'
              minimumInterval: 'PT30S'
              maximumInterval: 'PT2M'
            }
          }
          // lcw-joiner answers 200 when done; never treat a 202 as "poll the Location header".
          // https://learn.microsoft.com/azure/logic-apps/logic-apps-create-api-app#asynchronous-polling-pattern
          operationOptions: 'DisableAsyncPattern'
          limit: {
            // One subject, a few Graph calls: a minute is ample (the HTTP trigger itself is cut at 230 s).
            timeout: 'PT1M'
          }
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
                'outputs'
              ]
            }
          }
        }
      }
      outputs: {}
    }
  }
}

@description('Object id of the relay\'s managed identity. Its app id (az ad sp show --id <this> --query appId) goes into ENRICH_ALLOWED_CALLERS; deploy.sh does that.')
output principalId string = relay.identity.principalId
output workflowName string = relay.name
output workflowId string = relay.id
@description('The endpointConfiguration of the LCW custom task extension (#microsoft.graph.logicAppTriggerEndpointConfiguration).')
output customTaskExtensionEndpoint object = {
  '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration'
  subscriptionId: subscription().subscriptionId
  resourceGroupName: resourceGroup().name
  logicAppWorkflowName: relay.name
}
