//! Container user resolution: parses the text of the image's /etc/passwd and
//! /etc/group and turns `user[:group]` plus `group_add` into uid, gid,
//! supplementary gids and home directory, with runc's lookup rules (which
//! Docker uses):
//!
//! - an empty user means uid 0;
//! - a user is matched by name, or by uid when numeric; the first match wins;
//! - a numeric uid absent from passwd is allowed (gid 0, home `/`);
//! - an explicit group replaces the primary gid and suppresses the groups the
//!   user is a member of; without one, every group listing the user's name
//!   becomes a supplementary gid;
//! - `group_add` entries are appended (names must exist in /etc/group).

use super::SpecError;

/// Largest uid/gid runc accepts (Go's `MaxInt32`).
const MAX_ID: u64 = i32::MAX as u64;

/// One line of /etc/passwd, the fields spec generation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
}

/// One line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupEntry<'a> {
    pub name: &'a str,
    pub gid: u32,
    pub members: Vec<&'a str>,
}

/// The process identity a `user` setting resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Parses passwd text; comments, blank and malformed lines are skipped as
/// libc does.
pub(crate) fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    significant_lines(text)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: fields[0],
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
                home: fields.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

/// Parses group text (`name:password:gid:member,member`).
pub(crate) fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    significant_lines(text)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 3 {
                return None;
            }
            let members = fields.get(3).map_or_else(Vec::new, |list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect()
            });
            Some(GroupEntry {
                name: fields[0],
                gid: fields[2].parse().ok()?,
                members,
            })
        })
        .collect()
}

fn significant_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Resolves `user[:group]` and `group_add` against the image's files
/// (`None`: the image has no such file).
pub(crate) fn resolve(
    user: Option<&str>,
    group_add: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, SpecError> {
    let passwd = parse_passwd(passwd.unwrap_or(""));
    let groups = parse_group(group.unwrap_or(""));
    let spec = user.map(str::trim).unwrap_or("");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let mut resolved = lookup_user(user_part, &passwd)?;
    match group_part.filter(|g| !g.is_empty()) {
        Some(g) => resolved.gid = lookup_group(g, &groups)?,
        None => resolved.additional_gids = member_gids(user_part, &passwd, &groups),
    }
    for extra in group_add {
        let gid = lookup_group(extra.trim(), &groups)?;
        if !resolved.additional_gids.contains(&gid) {
            resolved.additional_gids.push(gid);
        }
    }
    Ok(resolved)
}

fn lookup_user(arg: &str, passwd: &[PasswdEntry<'_>]) -> Result<ResolvedUser, SpecError> {
    let numeric = parse_id(arg)?;
    let entry = passwd
        .iter()
        .find(|e| e.name == arg || Some(e.uid) == numeric);
    match (entry, numeric) {
        (Some(e), _) => Ok(ResolvedUser {
            uid: e.uid,
            gid: e.gid,
            additional_gids: Vec::new(),
            home: non_empty_or_root(e.home),
        }),
        (None, Some(uid)) => Ok(ResolvedUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".to_string(),
        }),
        (None, None) => Err(SpecError::UnknownUser(arg.to_string())),
    }
}

fn lookup_group(arg: &str, groups: &[GroupEntry<'_>]) -> Result<u32, SpecError> {
    let numeric = parse_id(arg)?;
    let entry = groups
        .iter()
        .find(|g| g.name == arg || Some(g.gid) == numeric);
    match (entry, numeric) {
        (Some(g), _) => Ok(g.gid),
        (None, Some(gid)) => Ok(gid),
        (None, None) => Err(SpecError::UnknownGroup(arg.to_string())),
    }
}

/// Gids of the groups that list the user (by its passwd name) as a member.
fn member_gids(arg: &str, passwd: &[PasswdEntry<'_>], groups: &[GroupEntry<'_>]) -> Vec<u32> {
    let numeric = arg.parse::<u32>().ok();
    let Some(name) = passwd
        .iter()
        .find(|e| e.name == arg || Some(e.uid) == numeric)
        .map(|e| e.name)
    else {
        return Vec::new();
    };
    let mut gids = Vec::new();
    for group in groups.iter().filter(|g| g.members.contains(&name)) {
        if !gids.contains(&group.gid) {
            gids.push(group.gid);
        }
    }
    gids
}

/// `Some(id)` for a decimal id, `None` for a name; ids above `MAX_ID` are
/// rejected like runc does rather than wrapping.
fn parse_id(arg: &str) -> Result<Option<u32>, SpecError> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match arg.parse::<u64>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id as u32)),
        _ => Err(SpecError::IdOutOfRange(arg.to_string())),
    }
}

fn non_empty_or_root(home: &str) -> String {
    if home.is_empty() { "/" } else { home }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# system users
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken line
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,app
audio:x:29:app
nogroup:x:65534:
app:x:1000:
";

    fn resolve_in_image(user: Option<&str>, add: &[&str]) -> Result<ResolvedUser, SpecError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve(user, &add, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn passwd_parser_skips_comments_and_malformed_lines() {
        let entries = parse_passwd(PASSWD);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[2].name, "nobody");
        assert_eq!(entries[2].uid, 65534);
        assert_eq!(entries[2].home, "/nonexistent");
    }

    #[test]
    fn group_parser_reads_member_lists() {
        let groups = parse_group(GROUP);
        assert_eq!(groups[1].name, "wheel");
        assert_eq!(groups[1].members, vec!["root", "app"]);
        assert!(groups[0].members.is_empty());
    }

    #[test]
    fn user_nobody_is_resolved_from_passwd_text() {
        let user = resolve_in_image(Some("nobody"), &[]).unwrap();
        assert_eq!((user.uid, user.gid), (65534, 65534));
        assert_eq!(user.home, "/nonexistent");
    }

    #[test]
    fn no_user_means_root_with_its_member_groups() {
        let user = resolve_in_image(None, &[]).unwrap();
        assert_eq!((user.uid, user.gid), (0, 0));
        assert_eq!(user.home, "/root");
        assert_eq!(user.additional_gids, vec![10]);
    }

    #[test]
    fn numeric_uid_missing_from_passwd_gets_gid_zero_and_root_home() {
        let user = resolve_in_image(Some("4242"), &[]).unwrap();
        assert_eq!((user.uid, user.gid), (4242, 0));
        assert_eq!(user.home, "/");
    }

    #[test]
    fn numeric_uid_present_in_passwd_takes_its_gid() {
        let user = resolve_in_image(Some("1000"), &[]).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.additional_gids, vec![10, 29]);
    }

    #[test]
    fn unknown_user_name_is_an_error() {
        let err = resolve_in_image(Some("ghost"), &[]).unwrap_err();
        assert_eq!(err, SpecError::UnknownUser("ghost".into()));
        assert!(err.to_string().contains("unknown user \"ghost\""));
    }

    #[test]
    fn user_name_without_a_passwd_file_is_an_error() {
        let err = resolve(Some("app"), &[], None, None).unwrap_err();
        assert_eq!(err, SpecError::UnknownUser("app".into()));
    }

    #[test]
    fn explicit_group_sets_gid_and_drops_member_groups() {
        let user = resolve_in_image(Some("app:audio"), &[]).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 29));
        assert!(user.additional_gids.is_empty());
    }

    #[test]
    fn numeric_group_need_not_exist() {
        let user = resolve_in_image(Some("app:777"), &[]).unwrap();
        assert_eq!(user.gid, 777);
    }

    #[test]
    fn unknown_group_name_is_an_error() {
        let err = resolve_in_image(Some("app:ghosts"), &[]).unwrap_err();
        assert_eq!(err, SpecError::UnknownGroup("ghosts".into()));
    }

    #[test]
    fn group_add_appends_named_and_numeric_groups_once() {
        let user = resolve_in_image(Some("app"), &["audio", "nogroup", "5000"]).unwrap();
        assert_eq!(user.additional_gids, vec![10, 29, 65534, 5000]);
    }

    #[test]
    fn ids_beyond_int32_are_rejected() {
        let err = resolve_in_image(Some("4294967296"), &[]).unwrap_err();
        assert_eq!(err, SpecError::IdOutOfRange("4294967296".into()));
    }
}
