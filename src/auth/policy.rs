//! Who may do what: the only place role rules are written down.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Worker,
    Customer,
    Bot,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Worker => "worker",
            Self::Customer => "customer",
            Self::Bot => "bot",
        }
    }

    pub fn is_staff(self) -> bool {
        matches!(self, Self::Owner | Self::Worker)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Self::Owner),
            "worker" => Ok(Self::Worker),
            "customer" => Ok(Self::Customer),
            "bot" => Ok(Self::Bot),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// Everything a route may need permission for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Own profile, own sessions, dashboard, notifications: any person.
    UsePersonalApi,
    /// Read customers and their holdings.
    ViewCustomers,
    /// Erase a customer account.
    DeleteCustomers,
    /// List all accounts and change roles.
    ManageRoles,
    /// Create, change and restock items; read the ledger and staff-only item fields.
    ManageStock,
    /// Delete an item.
    DeleteItems,
    /// Browse items (customers see a reduced view).
    BrowseItems,
    /// Hold an own inventory and ask for replenishment.
    HoldInventory,
    /// Fulfil or reject requests.
    DecideRequests,
    /// Upload files.
    UploadFiles,
    /// Create and manage bots.
    ManageBots,
    /// Use the chats one is a member of: read, send, mark read (people and bots).
    UseChats,
    /// Open direct chats and create groups (people; groups are further limited to staff).
    StartChats,
}

/// The rule table. Bots are limited to the chat endpoints and uploads.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        UploadFiles | UseChats => true,
        StartChats => role != Bot,
        UsePersonalApi | BrowseItems => role != Bot,
        ViewCustomers | ManageStock | DecideRequests => role.is_staff(),
        DeleteCustomers | ManageRoles | DeleteItems | ManageBots => role == Owner,
        HoldInventory => role == Customer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_cannot_do_owner_things() {
        for action in [
            Action::DeleteCustomers,
            Action::ManageRoles,
            Action::ManageBots,
        ] {
            assert!(allows(Role::Owner, action));
            assert!(!allows(Role::Worker, action));
            assert!(!allows(Role::Customer, action));
            assert!(!allows(Role::Bot, action));
        }
    }

    #[test]
    fn bots_only_upload() {
        assert!(allows(Role::Bot, Action::UploadFiles));
        assert!(!allows(Role::Bot, Action::UsePersonalApi));
        assert!(!allows(Role::Bot, Action::BrowseItems));
    }
}
