//! The in-memory directory: users kept in a `Vec` in id order plus an id→index map, so that a
//! page of `GET /users` is O(page) and a lookup is O(1). Every change bumps a tenant-wide
//! sequence number that delta queries compare against.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::SandboxError;

/// One stored user (Graph JSON shape) plus the bookkeeping delta needs.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub id: String,
    pub props: Map<String, Value>,
    /// Sequence number at which the user was created (or re-created).
    pub created_seq: u64,
    /// Last sequence number at which any property changed.
    pub changed_seq: u64,
    /// Last change sequence per top-level property, so delta with `$select` only surfaces
    /// changes to selected properties (https://learn.microsoft.com/graph/api/user-delta).
    pub prop_seq: HashMap<String, u64>,
}

/// A removed user as delta reports it: `@removed: {reason}`.
#[derive(Debug, Clone)]
pub struct Tombstone {
    pub id: String,
    pub seq: u64,
    /// `changed` (soft-deleted, restorable) or `deleted` (permanently deleted).
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub struct Directory {
    users: Vec<StoredUser>,
    index: HashMap<String, usize>,
    upn_index: HashMap<String, String>,
    tombstones: Vec<Tombstone>,
    seq: u64,
    pub privileged: HashSet<String>,
}

impl Directory {
    pub fn new(
        users: Vec<Map<String, Value>>,
        privileged: HashSet<String>,
    ) -> Result<Self, SandboxError> {
        let mut d = Directory {
            privileged,
            ..Default::default()
        };
        let mut stored = Vec::with_capacity(users.len());
        let mut seen = HashSet::new();
        for props in users {
            let id = props
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| SandboxError::Tenant("a user has no string `id`".into()))?
                .to_string();
            if !seen.insert(id.clone()) {
                return Err(SandboxError::Tenant(format!("duplicate user id {id}")));
            }
            d.seq += 1;
            stored.push(StoredUser {
                id,
                props,
                created_seq: d.seq,
                changed_seq: d.seq,
                prop_seq: HashMap::new(),
            });
        }
        stored.sort_by(|a, b| a.id.cmp(&b.id));
        d.users = stored;
        d.reindex();
        Ok(d)
    }

    fn reindex(&mut self) {
        self.index.clear();
        self.upn_index.clear();
        for (i, u) in self.users.iter().enumerate() {
            self.index.insert(u.id.clone(), i);
            if let Some(upn) = u.props.get("userPrincipalName").and_then(Value::as_str) {
                self.upn_index
                    .insert(upn.to_ascii_lowercase(), u.id.clone());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn users(&self) -> &[StoredUser] {
        &self.users
    }

    pub fn tombstones(&self) -> &[Tombstone] {
        &self.tombstones
    }

    /// Position of the first user whose id is greater than `id` (for paging).
    pub fn position_after(&self, id: &str) -> usize {
        self.users.partition_point(|u| u.id.as_str() <= id)
    }

    /// Looks a user up by object id or (case-insensitively) by userPrincipalName, as
    /// `GET /users/{id | userPrincipalName}` does (https://learn.microsoft.com/graph/api/user-get).
    pub fn find(&self, key: &str) -> Option<&StoredUser> {
        if let Some(&i) = self.index.get(key) {
            return self.users.get(i);
        }
        let id = self.upn_index.get(&key.to_ascii_lowercase())?;
        self.index.get(id).and_then(|&i| self.users.get(i))
    }

    pub fn resolve_id(&self, key: &str) -> Option<String> {
        self.find(key).map(|u| u.id.clone())
    }

    /// Sets top-level properties; only properties whose value actually changes bump the sequence.
    /// Returns the names of properties that changed.
    pub fn apply(&mut self, id: &str, changes: &Map<String, Value>) -> Vec<String> {
        let Some(&i) = self.index.get(id) else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        let next = self.seq + 1;
        if let Some(u) = self.users.get_mut(i) {
            for (k, v) in changes {
                if u.props.get(k) != Some(v) {
                    u.props.insert(k.clone(), v.clone());
                    u.prop_seq.insert(k.clone(), next);
                    changed.push(k.clone());
                }
            }
            if !changed.is_empty() {
                u.changed_seq = next;
            }
        }
        if !changed.is_empty() {
            self.seq = next;
            if changed.iter().any(|k| k == "userPrincipalName") {
                self.reindex();
            }
        }
        changed
    }

    /// Inserts or replaces a user ("a newly synced user appears"); returns its id.
    pub fn upsert(&mut self, mut props: Map<String, Value>) -> Result<String, SandboxError> {
        let id = match props.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                props.insert("id".into(), Value::String(id.clone()));
                id
            }
        };
        if let Some(&i) = self.index.get(&id) {
            let changes: Map<String, Value> = props.into_iter().collect();
            // Full replace of the given properties; unlisted ones stay.
            let _ = i;
            self.apply(&id, &changes);
            return Ok(id);
        }
        self.seq += 1;
        self.tombstones.retain(|t| t.id != id);
        let pos = self.users.partition_point(|u| u.id < id);
        self.users.insert(
            pos,
            StoredUser {
                id: id.clone(),
                props,
                created_seq: self.seq,
                changed_seq: self.seq,
                prop_seq: HashMap::new(),
            },
        );
        self.reindex();
        Ok(id)
    }

    /// Removes a user; `permanently` decides the delta `@removed.reason` (`deleted` vs `changed`).
    pub fn remove(&mut self, id: &str, permanently: bool) -> bool {
        let Some(&i) = self.index.get(id) else {
            return false;
        };
        self.users.remove(i);
        self.seq += 1;
        self.tombstones.push(Tombstone {
            id: id.to_string(),
            seq: self.seq,
            reason: if permanently { "deleted" } else { "changed" },
        });
        self.privileged.remove(id);
        self.reindex();
        true
    }
}
