//! Sharing a private directory with one group: the members can connect to its sockets, nobody
//! else can reach them.

use std::path::Path;

use crate::dir::{DirOptions, PrivateDir, SHARED_DIR_MODE};
use crate::error::{Error, ErrorKind, Result, show};
use crate::sys::{self, FileKind};

impl PrivateDir {
    /// A private directory (as [`create`](PrivateDir::create) makes it, in `parent` or the
    /// automatic location) given to group `gid` with mode 0710: the group's members can reach a
    /// socket whose name they know, but cannot list the directory or create anything in it;
    /// sockets bound or adopted in it are given to group `gid` too, with mode 0660, before
    /// they listen (so a member by a supplementary group connects). Pair it with an
    /// [`AcceptPolicy`](crate::AcceptPolicy) of [`Allow::Group`](crate::Allow::Group) to know
    /// who connected.
    ///
    /// Fails with [`ErrorKind::Invalid`] when the effective user is not a member of `gid` (its
    /// effective group or a supplementary one); nothing is created then.
    pub fn shared_with_group(parent: Option<&Path>, gid: u32) -> Result<PrivateDir> {
        PrivateDir::create_with(parent, &DirOptions::default().share_with_group(gid))
    }

    /// Gives the new directory to group `gid` with mode 0710, and its future sockets 0660.
    pub(super) fn share_with(&mut self, gid: u32) -> Result<()> {
        let path = show(self.path());
        let fd = self.dir.fd();
        sys::fchown_group(fd, gid)
            .map_err(|e| Error::system(format_args!("cannot give {path} to group {gid}"), &e))?;
        sys::fchmod(fd, SHARED_DIR_MODE)
            .map_err(|e| Error::system(format_args!("cannot set mode 0710 on {path}"), &e))?;
        let st =
            sys::fstat(fd).map_err(|e| Error::system(format_args!("cannot stat {path}"), &e))?;
        if st.kind() != FileKind::Directory || st.perms() != SHARED_DIR_MODE || st.gid != gid {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{path} has mode {:04o} and group {} after sharing, not 0710 and group {gid}",
                    st.perms(),
                    st.gid
                ),
            ));
        }
        self.socket_mode = 0o660;
        self.socket_group = Some(gid);
        Ok(())
    }
}

/// Is this process a member of group `gid` (its effective group or a supplementary one)? Asked
/// before anything is made.
pub(super) fn check_member(gid: u32) -> Result<()> {
    let groups =
        sys::own_groups().map_err(|e| Error::system("cannot read this process's groups", &e))?;
    if !groups.contains(&gid) {
        return Err(Error::invalid(format!(
            "cannot share a directory with group {gid}: this process is not a member (its groups are {groups:?})"
        )));
    }
    Ok(())
}
