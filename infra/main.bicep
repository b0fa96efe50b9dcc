// entra-enrich: the Azure Functions app (custom handler) on Flex Consumption (Linux), its storage,
// monitoring, identity and role assignments. The LCW relay Logic App is relay-logicapp.bicep (deployed
// after the code, because it reads the lcw-joiner function key); infra/deploy.sh runs both.
//
// API versions used (all GA):
//   Microsoft.ManagedIdentity/userAssignedIdentities   2023-01-31
//   Microsoft.Storage/storageAccounts (+ blobServices/containers) 2023-05-01
//   Microsoft.OperationalInsights/workspaces            2023-09-01
//   Microsoft.Insights/components                       2020-02-02
//   Microsoft.Web/serverfarms, Microsoft.Web/sites (+ basicPublishingCredentialsPolicies) 2024-04-01
//     (functionAppConfig, which Flex Consumption requires, exists from 2023-12-01 on:
//      https://learn.microsoft.com/azure/templates/microsoft.web/sites?pivots=deployment-language-bicep)
//   Microsoft.Authorization/roleAssignments             2022-04-01
//
// Flex Consumption reference: https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to
// and the official Bicep sample https://github.com/Azure-Samples/azure-functions-flex-consumption-samples
// (IaC/bicep), whose shape this file follows.

targetScope = 'resourceGroup'

@description('Prefix of every resource name, e.g. "ee-prod". Lowercase letters, digits and hyphens.')
@minLength(2)
@maxLength(20)
param namePrefix string

@description('Azure region. Must offer Flex Consumption: az functionapp list-flexconsumption-locations.')
param location string = resourceGroup().location

@description('Entra tenant whose tokens lcw-joiner accepts (ENRICH_TENANT_ID).')
param tenantId string = tenant().tenantId

@description('Comma-separated app ids accepted as lcw-joiner callers (ENRICH_ALLOWED_CALLERS): the relay Logic App managed identity app id. Empty on the very first deployment (deploy.sh fills it once the relay exists); while empty, the caller check is off and only the function key protects lcw-joiner.')
param allowedCallers string = ''

@description('Audience lcw-joiner requires in the relay token (ENRICH_AUDIENCE) and the relay requests. Empty: the client id of the app\'s user-assigned identity (an app id the relay can request a token for). Set an Application ID URI (api://...) if you register an app for entra-enrich.')
param audience string = ''

@description('User property path holding the HR country (ENRICH_USAGELOCATION_SOURCE). Empty: never write usageLocation.')
param usageLocationSource string = ''

@description('User property path holding the HR personal email (ENRICH_OTHERMAILS_SOURCE).')
param otherMailsSource string = 'onPremisesExtensionAttributes.extensionAttribute1'

@description('Where HR values come from (ENRICH_SOURCE): the users\' own attributes, or a Workday RaaS report matched by employeeId.')
@allowed([
  'directory'
  'workday'
])
param hrSource string = 'directory'

@description('ENRICH_WORKDAY_REPORT_URL: https://{host}/ccx/service/customreport2/{tenant}/{owner}/{report} (Workday: Actions > Web Service > View URLs).')
param workdayReportUrl string = ''

@description('ENRICH_WORKDAY_PERSONAL_EMAIL_FIELD: the report column or field path of the personal email.')
param workdayPersonalEmailField string = 'Personal_Email'

@description('ENRICH_WORKDAY_COUNTRY_FIELD: the report column of the country; empty: no usageLocation from Workday.')
param workdayCountryField string = ''

@description('ENRICH_WORKDAY_PROMPT: the report\'s prompt on the employee id (recommended); empty: joiners use a cached copy of the report.')
param workdayPrompt string = ''

@description('ENRICH_WORKDAY_USERNAME: the Integration System User.')
param workdayUsername string = ''

@description('ENRICH_KEYVAULT_URL: the vault holding the Workday password (grant the function\'s identity "Key Vault Secrets User" on it).')
param keyVaultUrl string = ''

@description('ENRICH_WORKDAY_PASSWORD_SECRET_NAME: the Key Vault secret holding the ISU password.')
param workdayPasswordSecretName string = ''

@description('ENRICH_WORKDAY_WRITEBACK: off, email, or email,username: lcw-joiner and new-hire-watch write the joiner\'s work email (and username) back to Workday at once.')
@allowed([
  'off'
  'email'
  'email,username'
])
param workdayWriteback string = 'off'

@description('ENRICH_WORKDAY_WWS_URL: https://{host}/ccx/service/{tenant}/Human_Resources/v{NN.N}; required when workdayWriteback is not off.')
param workdayWwsUrl string = ''

@description('ENRICH_WORKDAY_WRITEBACK_USERNAME: upn, or local-part (the UPN before its @).')
@allowed([
  'upn'
  'local-part'
])
param workdayWritebackUsername string = 'upn'

@description('ENRICH_WORKDAY_WRITEBACK_FROM: created (at once) or hire-date (queued until employeeHireDate).')
@allowed([
  'created'
  'hire-date'
])
param workdayWritebackFrom string = 'created'

@description('Which users may be touched (ENRICH_SCOPE).')
param scope string = 'onPremisesSyncEnabled eq true'

@description('replace or merge (ENRICH_OTHERMAILS_MODE).')
@allowed([
  'replace'
  'merge'
])
param otherMailsMode string = 'replace'

@description('Where the HR personal email goes (ENRICH_SSPR_EMAIL_TARGET): the Alternate email, the Authentication email (grant-graph-permissions.sh --email-method), or both.')
@allowed([
  'otherMails'
  'authenticationMethod'
  'both'
])
param ssprEmailTarget string = 'otherMails'

@description('ENRICH_SSPR_OVERWRITE_REGISTERED: replace an Authentication email entra-enrich did not write.')
@allowed([
  'true'
  'false'
])
param ssprOverwriteRegistered string = 'false'

@description('ENRICH_DRY_RUN: plan and report, write nothing. Keep "true" for the first deployment; deploy.sh preserves the deployed value unless told otherwise.')
@allowed([
  'true'
  'false'
])
param enrichDryRun string = 'true'

@description('ENRICH_MAX_WRITES_PER_MINUTE (1..1200).')
@minValue(1)
@maxValue(1200)
param maxWritesPerMinute int = 1000

@description('ENRICH_TIME_BUDGET_SECONDS: per timer invocation; keep below host.json functionTimeout (10 min).')
@minValue(5)
@maxValue(540)
param timeBudgetSeconds int = 240

@description('ENRICH_JOINER_DEADLINE_SECONDS: lcw-joiner answers within this (503 + Retry-After past it, no resume); keep it inside the relay\'s 60 s HTTP action timeout.')
@minValue(2)
@maxValue(55)
param joinerDeadlineSeconds int = 40

@description('ENRICH_HEALTH_CHECKS_SECONDS: how often health re-reads its tenant checks (permissions, Email OTP); 0 leaves them out.')
@minValue(0)
@maxValue(86400)
param healthChecksSeconds int = 600

@description('NEW_HIRE_WATCH_SCHEDULE (six-field NCRONTAB, UTC). Must be set: the host cannot index a timer whose %setting% is missing.')
param newHireWatchSchedule string = '0 */2 * * * *'

@description('BACKFILL_SCHEDULE (six-field NCRONTAB, UTC). Must be set, as above.')
param backfillSchedule string = '0 0 2 * * *'

@description('GRAPH_BASE_URL: https://graph.microsoft.com, or a sovereign cloud\'s Graph host.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('AZURE_AUTHORITY_HOST for the lcw-joiner caller check.')
param authorityHost string = 'https://login.microsoftonline.com'

@description('Flex Consumption instance memory (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption maximum instance count. The timers run on one instance (storage lock); only lcw-joiner scales out.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Object ids of people or groups who run the CLI (entra-enrich runs / rollback --run ID) against the state container: they get Storage Blob Data Contributor on that container only.')
param operatorPrincipalIds array = []

@description('Redundancy of the storage account (host storage, deployment package, state). GRS keeps a copy in the paired region: the state container holds the audit log that rollback restores from, which nothing else can re-create. Use Standard_GZRS where the region also has zones, or Standard_ZRS / Standard_LRS in a region without a pair or where a copy outside the region is not allowed (the audit log holds before/after values, personal emails included).')
@allowed([
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_ZRS'
  'Standard_LRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Tags for every resource.')
param tags object = {
  app: 'entra-enrich'
}

// ---------------------------------------------------------------------------------------------------
// Names

var suffix = uniqueString(subscription().id, resourceGroup().id, namePrefix)
var functionAppName = '${namePrefix}-func-${take(suffix, 6)}'
var planName = '${namePrefix}-plan'
var identityName = '${namePrefix}-id'
var workspaceName = '${namePrefix}-logs'
var appInsightsName = '${namePrefix}-appi'
// Storage account names: 3-24 lowercase letters and digits, globally unique.
var storageAccountName = take('${take(toLower(replace(namePrefix, '-', '')), 9)}st${suffix}', 24)
// Flex Consumption deploys the zip package into this container
// (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#deployment).
var deploymentContainerName = 'app-package'
// Checkpoints, cursors and the audit log (ENRICH_STATE_BLOB_URL).
var stateContainerName = 'entra-enrich-state'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// ---------------------------------------------------------------------------------------------------
// Identity: one user-assigned identity for the host (storage, App Insights) and for Graph
// (AZURE_CLIENT_ID selects it). User-assigned, so its client id is known at deployment time and it
// survives re-creating the function app (Graph app-role grants stay).

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

var effectiveAudience = empty(audience) ? identity.properties.clientId : audience
var callerCheckOn = !empty(allowedCallers)

// ---------------------------------------------------------------------------------------------------
// Storage: host storage (AzureWebJobsStorage: timer locks and schedule monitor), the deployment
// package container and our state container. Shared keys are disabled: everything uses Entra auth
// (https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent).

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet in this template: the Flex app reaches host storage, its package and the state blob over the public endpoint, as do operators' CLI runs; shared keys are off, so every request needs an Entra token and a data role
  // checkov:skip=CKV_AZURE_59: as CKV_AZURE_35: the app and the operators reach the account over its public endpoint (no VNet integration or private endpoints here); access is Entra-only (allowSharedKeyAccess: false)
  // checkov:skip=CKV_AZURE_43: the name is computed (storageAccountName: the prefix without hyphens, lowercased, + 'st' + uniqueString(), at most 24 letters and digits); checkov sees the expression, not its value
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSkuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    // No account keys, no SAS signed with them: identity-based access only. Flex Consumption supports
    // identity-based host storage and deployment storage
    // (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
    allowSharedKeyAccess: false
    // The portal and tools default to Entra auth for data access.
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // Lets an operator recover an overwritten or deleted checkpoint/audit blob.
    deleteRetentionPolicy: {
      enabled: true
      days: 14
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 14
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: stateContainerName
  properties: {
    publicAccess: 'None'
  }
}

// ---------------------------------------------------------------------------------------------------
// Monitoring: workspace-based Application Insights with local (key) auth disabled; the app sends
// telemetry with its identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below,
// https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------------
// Role assignments for the app identity.

// Host storage: Storage Blob Data Owner on the account (timer singleton locks, schedule monitor,
// keys, and the deployment container). It also covers our state container, for which Storage Blob
// Data Contributor would be enough.
// https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The host writes diagnostic events to table storage when AzureWebJobsStorage is identity-based; the
// Flex Consumption samples grant this role for that reason.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with Entra auth needs Monitoring Metrics Publisher on the Application Insights resource.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Operators who run the CLI against the state container (runs, rollback --run ID).
resource operatorState 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in operatorPrincipalIds: {
    name: guid(stateContainer.id, principalId, roles.storageBlobDataContributor)
    scope: stateContainer
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
      principalId: principalId
    }
  }
]

// ---------------------------------------------------------------------------------------------------
// Flex Consumption plan and the function app.

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption makes the platform keep at least two always-ready instances per scale group, billed around the clock; this app runs on demand on purpose (no alwaysReady): timers resume from their cursor/checkpoint on the next tick and the relay retries lcw-joiner
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to?pivots=programming-language-other&tabs=azure-cli%2Cbicep
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

var stateBlobUrl = '${storage.properties.primaryEndpoints.blob}${stateContainerName}'

// Every setting entra-enrich reads (src/config.rs SETTINGS), with safe values. Empty means "unset"
// (config.rs trims and ignores empty values).
var enrichSettings = [
  { name: 'GRAPH_BASE_URL', value: graphBaseUrl }
  // A Graph host outside the documented list would receive the app's token: only ever on purpose.
  { name: 'ENRICH_ALLOW_CUSTOM_GRAPH_HOST', value: 'false' }
  { name: 'ENRICH_CREDENTIAL', value: 'managed-identity' }
  { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
  { name: 'AZURE_TENANT_ID', value: '' } // only for workload identity / client secret
  { name: 'ENRICH_KEYVAULT_URL', value: keyVaultUrl }
  { name: 'ENRICH_CLIENT_SECRET_NAME', value: '' }
  { name: 'ENRICH_SCOPE', value: scope }
  { name: 'ENRICH_OTHERMAILS_SOURCE', value: otherMailsSource }
  { name: 'ENRICH_SOURCE', value: hrSource }
  { name: 'ENRICH_WORKDAY_REPORT_URL', value: workdayReportUrl }
  { name: 'ENRICH_WORKDAY_EMPLOYEE_ID_FIELD', value: 'Employee_ID' }
  { name: 'ENRICH_WORKDAY_PERSONAL_EMAIL_FIELD', value: workdayPersonalEmailField }
  { name: 'ENRICH_WORKDAY_COUNTRY_FIELD', value: workdayCountryField }
  { name: 'ENRICH_WORKDAY_PROMPT', value: workdayPrompt }
  { name: 'ENRICH_WORKDAY_CACHE_SECONDS', value: '900' }
  { name: 'ENRICH_WORKDAY_USERNAME', value: workdayUsername }
  // Never a plain password here: it comes from Key Vault.
  { name: 'ENRICH_WORKDAY_PASSWORD', value: '' }
  { name: 'ENRICH_WORKDAY_PASSWORD_SECRET_NAME', value: workdayPasswordSecretName }
  { name: 'ENRICH_WORKDAY_TOKEN_URL', value: '' }
  { name: 'ENRICH_WORKDAY_CLIENT_ID', value: '' }
  { name: 'ENRICH_WORKDAY_CLIENT_SECRET_NAME', value: '' }
  { name: 'ENRICH_WORKDAY_REFRESH_TOKEN_SECRET_NAME', value: '' }
  { name: 'ENRICH_WORKDAY_WRITEBACK', value: workdayWriteback }
  { name: 'ENRICH_WORKDAY_WWS_URL', value: workdayWwsUrl }
  { name: 'ENRICH_WORKDAY_WRITEBACK_EMAIL', value: 'mail' }
  { name: 'ENRICH_WORKDAY_WRITEBACK_USERNAME', value: workdayWritebackUsername }
  { name: 'ENRICH_WORKDAY_WRITEBACK_FROM', value: workdayWritebackFrom }
  { name: 'ENRICH_USAGELOCATION_SOURCE', value: usageLocationSource }
  { name: 'ENRICH_OTHERMAILS_MODE', value: otherMailsMode }
  { name: 'ENRICH_SSPR_EMAIL_TARGET', value: ssprEmailTarget }
  { name: 'ENRICH_SSPR_OVERWRITE_REGISTERED', value: ssprOverwriteRegistered }
  { name: 'ENRICH_DRY_RUN', value: enrichDryRun }
  { name: 'ENRICH_MAX_WRITES_PER_MINUTE', value: string(maxWritesPerMinute) }
  { name: 'ENRICH_TIME_BUDGET_SECONDS', value: string(timeBudgetSeconds) }
  { name: 'ENRICH_JOINER_DEADLINE_SECONDS', value: string(joinerDeadlineSeconds) }
  { name: 'ENRICH_HEALTH_CHECKS_SECONDS', value: string(healthChecksSeconds) }
  // The caller check is on when any of these three is set, and then all three are required
  // (README › Configuration): set them together, once the relay's app id is known.
  { name: 'ENRICH_TENANT_ID', value: callerCheckOn ? tenantId : '' }
  { name: 'AZURE_AUTHORITY_HOST', value: authorityHost }
  { name: 'ENRICH_AUDIENCE', value: callerCheckOn ? effectiveAudience : '' }
  { name: 'ENRICH_ALLOWED_CALLERS', value: allowedCallers }
  { name: 'NEW_HIRE_WATCH_SCHEDULE', value: newHireWatchSchedule }
  { name: 'BACKFILL_SCHEDULE', value: backfillSchedule }
  { name: 'ENRICH_STATE_BLOB_URL', value: stateBlobUrl }
  // Must stay empty in Azure: a state directory wins over the blob settings.
  { name: 'ENRICH_STATE_DIR', value: '' }
]

// Host settings. Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE and the content-share settings: the runtime is functionAppConfig.runtime
// (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
var hostSettings = [
  // Identity-based host storage with a user-assigned identity
  // (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
  { name: 'AzureWebJobsStorage__accountName', value: storage.name }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
  // https://learn.microsoft.com/azure/azure-functions/configure-monitoring#enable-microsoft-entra-authentication
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_78: Microsoft lists siteConfig ftpsState as deprecated on Flex Consumption ("FTPS not supported"), where code is only deployed from the blob container (functionAppConfig.deployment); FTP basic-auth publishing is off too (ftpBasicAuth below)
  // checkov:skip=CKV_AZURE_222: the relay, a Consumption Logic App (multi-tenant, no VNet access), calls lcw-joiner over the internet, and deploy.sh's health gate calls /api/health; both HTTP functions need a function key (lcw-joiner also the relay's Entra token once ENRICH_ALLOWED_CALLERS is set)
  // checkov:skip=CKV_AZURE_17: no caller presents a client certificate: the relay sends a function key and a managed-identity bearer token (checked by lcw-joiner once ENRICH_ALLOWED_CALLERS is set), deploy.sh's health gate a function key; requiring certificates would lock both out
  // checkov:skip=CKV_AZURE_212: numberOfWorkers is an App Service plan worker count; Flex Consumption adds instances per function on demand (scaleAndConcurrency), and its only minimum, alwaysReady, is left at 0 on purpose (see functionAppConfig)
  // checkov:skip=CKV_AZURE_213: App Service health check works for function apps only on Premium or Dedicated plans, and needs an anonymous path; /api/health is authLevel function (it reports version and config validity); deploy.sh checks it with the key
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      // HTTP/2 for clients that offer it; HTTP/1.1 clients are still served.
      http20Enabled: true
      appSettings: concat(hostSettings, enrichSettings)
    }
    // https://learn.microsoft.com/azure/templates/microsoft.web/sites?pivots=deployment-language-bicep#functionappconfig
    functionAppConfig: {
      deployment: {
        storage: {
          // The zip package lives in this container; the platform reads it with the identity below.
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        // https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#instance-memory
        instanceMemoryMB: instanceMemoryMB
        // https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#set-instance-limits
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            // lcw-joiner calls are short and mostly waiting on Graph; 16 is the platform default for
            // 2048 MB (https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#set-http-concurrencies).
            perInstanceConcurrency: 16
          }
        }
        // No alwaysReady: the timers tolerate a cold start, and lcw-joiner is called asynchronously by
        // the relay (which answered LCW 202 already).
      }
      // Custom handlers on Flex: runtime "custom" 1.0
      // (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#supported-language-stack-versions).
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  dependsOn: [
    // The host needs its storage roles on first start.
    blobOwner
    tableContributor
    metricsPublisher
    deploymentContainer
    stateContainer
  ]
}

// Basic (publishing-profile) auth off for FTP and SCM: deployments use Entra tokens (az functionapp
// deployment source config-zip does). https://learn.microsoft.com/azure/app-service/configure-basic-auth-disable
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---------------------------------------------------------------------------------------------------
// Outputs (read by deploy.sh and rollback.sh).

output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output functionAppHostName string = functionApp.properties.defaultHostName
output lcwJoinerUrl string = 'https://${functionApp.properties.defaultHostName}/api/lcw-joiner'
output healthUrl string = 'https://${functionApp.properties.defaultHostName}/api/health'
@description('AZURE_CLIENT_ID: the app identity\'s client (app) id. Put it in the LCW custom task extension callbackConfiguration.authorizedApps.')
output identityClientId string = identity.properties.clientId
@description('Object id of the app identity\'s service principal: grant the Graph app roles to this id (infra/README.md).')
output identityPrincipalId string = identity.properties.principalId
output audience string = effectiveAudience
output storageAccountName string = storage.name
output stateBlobUrl string = stateBlobUrl
output callerCheck bool = callerCheckOn
