//! `GET /users/{id}/transitiveMemberOf`: the groups a user belongs to, directly or through other
//! groups, which is what decides whether an Authentication methods policy target includes the user
//! (<https://learn.microsoft.com/graph/api/user-list-transitivememberof>; application permissions
//! `GroupMember.Read.All`, `Group.Read.All`, `Directory.Read.All`). The sandbox holds flat membership
//! lists set by tests; nested groups are out of its scope.

use http::StatusCode;
use serde_json::{json, Value};

use crate::http::SandboxResponse;
use crate::state::{refuse_without_role, Ctx, State};

const READ_ROLES: [&str; 4] = [
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The user's groups as `{"value": [{"@odata.type": "#microsoft.graph.group", "id"}]}`.
pub(crate) fn transitive_member_of(state: &State, ctx: &Ctx, key: &str) -> SandboxResponse {
    if let Some(denied) = refuse_without_role(ctx, &READ_ROLES) {
        return denied;
    }
    let g = state.lock();
    let Some(id) = g.dir.resolve_id(key) else {
        return crate::graph::not_found(key, ctx);
    };
    let mut groups: Vec<&String> = g
        .group_members
        .iter()
        .filter(|(_, members)| members.contains(&id))
        .map(|(group, _)| group)
        .collect();
    groups.sort();
    let value: Vec<Value> = groups
        .into_iter()
        .map(|gid| json!({"@odata.type": "#microsoft.graph.group", "id": gid}))
        .collect();
    let context = format!("{}/v1.0/$metadata#directoryObjects", state.base_url);
    SandboxResponse::json(
        StatusCode::OK,
        &json!({"@odata.context": context, "value": value}),
    )
}
