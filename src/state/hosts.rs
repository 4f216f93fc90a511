//! Remembered hosts (`grace_period`): the remote hosts (PAM_RHOST) a user recently logged in
//! from with a right code, so that a login from the same host within the grace period is
//! not asked for one. Pure: the list, its bound, and the keyed tag that names a host.
//!
//! A host is stored as an HMAC-SHA-256 of its PAM_RHOST keyed with the enrollment's secret
//! (and a label for this use), never as the name or a plain hash: the IPv4 address space
//! is small enough to hash in full in seconds, so a plain SHA-256 would tell anyone who can
//! read the counters file where the user logs in from. With the key, the tag says nothing
//! without the secret, and a new secret makes every old tag meaningless.

use crate::error::{Error, Result};
use crate::secret::SecretString;

/// At most this many hosts per user: the most recent ones (the counters record has room
/// for exactly this many).
pub const MAX_HOSTS: usize = 16;
/// A PAM_RHOST longer than this is never remembered (a DNS name is at most 253 bytes; an
/// IPv6 address with a zone fits easily).
pub const MAX_RHOST_LEN: usize = 255;

/// A host that passed recently: the tag of its PAM_RHOST ([`RemoteHost::tag`]) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RememberedHost {
    pub rhost_tag: [u8; 32],
    pub time: u64,
}

/// A login's PAM_RHOST and PAM_SERVICE, when the host is one worth remembering: remote
/// (not loopback, not "localhost"), not empty, not over [`MAX_RHOST_LEN`]. Compared byte for
/// byte (no case folding or DNS lookups: the module trusts no more about the name than the
/// service that set it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHost {
    rhost: String,
    /// A code typed for one service spares only that service: the `sshd` login of a host
    /// must not let a later `su` or `sudo` from the same host through unasked.
    service: String,
}

impl RemoteHost {
    /// `None` for an empty, over-long or local PAM_RHOST, or an over-long service: such a
    /// login is never remembered and never let through unasked.
    pub fn new(rhost: &str, service: &str) -> Option<RemoteHost> {
        let remembered = !rhost.is_empty()
            && rhost.len() <= MAX_RHOST_LEN
            && service.len() <= MAX_RHOST_LEN
            && !is_local(rhost);
        remembered.then(|| RemoteHost {
            rhost: rhost.to_owned(),
            service: service.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.rhost
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The tag this host is stored under for the enrollment whose secret is `secret`.
    pub fn tag(&self, secret: &SecretString) -> Result<[u8; 32]> {
        use hmac::{Hmac, KeyInit, Mac};
        let key = crate::otp::decode_secret(secret)
            .ok_or_else(|| Error::Internal("the TOTP secret is not base32".into()))?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
            .map_err(|e| Error::Internal(format!("hmac: {e}")))?;
        // The label keeps this use of the key apart from every other (TOTP codes, the ids
        // of imported scratch codes).
        mac.update(b"pam-totp remembered host\0");
        // Each part with its length first, so that no two (service, rhost) pairs feed the
        // same bytes: ("ab", "c") and ("a", "bc") give different tags.
        for part in [&self.service, &self.rhost] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        Ok(mac.finalize().into_bytes().into())
    }
}

/// Whether `rhost` names this machine: a loopback or unspecified address (127.0.0.0/8 in
/// any notation, 0.0.0.0, ::1, ::, 127.x inside IPv6), a loopback name of /etc/hosts
/// (Debian's and RHEL's), or this machine's own host name (Debian maps it to 127.0.1.1).
/// Every local process shares such a host, so a code typed by one would spare them all;
/// it is never remembered nor honoured.
fn is_local(rhost: &str) -> bool {
    use std::net::IpAddr;
    // "[::1]" or "[::1]:22", as some services write it; an IPv6 zone ("::1%lo") does not
    // make an address remote.
    let address = match rhost.strip_prefix('[') {
        Some(inner) => inner.split_once(']').map_or(inner, |(address, _)| address),
        None => rhost,
    };
    let address = address
        .split_once('%')
        .map_or(address, |(address, _)| address);
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback() || v4.is_unspecified(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6
                    .to_ipv4()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
        }
        Err(_) if is_short_ipv4(address) => {
            // inet_aton's shorthand ("127.1", "0"): the first number is the network.
            address.split('.').next().is_some_and(|first| {
                first.trim_start_matches('0').is_empty() || first.parse() == Ok(127u32)
            })
        }
        Err(_) => {
            let name = rhost.trim_end_matches('.').to_ascii_lowercase();
            matches!(
                name.as_str(),
                "localhost"
                    | "localhost.localdomain"
                    | "localhost4"
                    | "localhost4.localdomain4"
                    | "localhost6"
                    | "localhost6.localdomain6"
                    | "ip6-localhost"
                    | "ip6-loopback"
            ) || name.ends_with(".localhost")
                || is_this_host(&name)
        }
    }
}

/// Digits and dots only, as inet_aton reads an IPv4 address in one to four parts.
fn is_short_ipv4(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').count() <= 4
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` (lower case) is this machine's host name, in full or its first label.
fn is_this_host(name: &str) -> bool {
    let Ok(host) = nix::unistd::gethostname() else {
        return false;
    };
    let host = host
        .to_string_lossy()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let short = host.split('.').next().unwrap_or(&host);
    !host.is_empty() && (name == host || name == short)
}

/// Adds or refreshes `host` in `hosts`, keeping at most [`MAX_HOSTS`] with no tag twice;
/// when full, the host seen longest ago is dropped (forgetting a host only costs that host
/// a code prompt).
pub fn remember(hosts: &mut Vec<RememberedHost>, host: RememberedHost) {
    hosts.retain(|h| h.rhost_tag != host.rhost_tag);
    while hosts.len() >= MAX_HOSTS {
        let Some(oldest) = (0..hosts.len()).min_by_key(|&i| hosts[i].time) else {
            break;
        };
        hosts.remove(oldest);
    }
    hosts.push(host);
}

/// How many seconds ago `tag` passed with a code, if that was within `grace` seconds of
/// `now`. A time after `now` (the clock went back) is not within: not let through.
pub fn passed_within(
    hosts: &[RememberedHost],
    tag: &[u8; 32],
    now: u64,
    grace: u64,
) -> Option<u64> {
    let host = hosts.iter().find(|h| tags_equal(&h.rhost_tag, tag))?;
    let ago = now.checked_sub(host.time)?;
    (grace > 0 && ago < grace).then_some(ago)
}

/// Compares two tags in constant time: how many bytes match must not show in the timing.
fn tags_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    // The crate the HOTP compare uses: a hand-written fold may be shortened by the optimiser.
    constant_time_eq::constant_time_eq_32(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::new(text.into())
    }

    #[test]
    fn empty_and_over_long_rhosts_are_never_remembered() {
        assert_eq!(RemoteHost::new("", "sshd"), None);
        assert_eq!(
            RemoteHost::new(&"a".repeat(MAX_RHOST_LEN + 1), "sshd"),
            None
        );
        assert!(RemoteHost::new(&"a".repeat(MAX_RHOST_LEN), "sshd").is_some());
        assert_eq!(RemoteHost::new("a", &"s".repeat(MAX_RHOST_LEN + 1)), None);
    }

    #[test]
    fn loopback_and_local_names_are_never_remembered() {
        for local in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "::1%lo",
            "::ffff:127.0.0.1",
            "0:0:0:0:0:0:0:1",
            "localhost",
            "LOCALHOST.",
            "localhost.localdomain",
            "ip6-localhost",
            "ip6-loopback",
            "foo.localhost",
            // Found by review: RHEL's names, shorthand and unspecified addresses, a port.
            "localhost4",
            "localhost4.localdomain4",
            "localhost6",
            "localhost6.localdomain6",
            "127.1",
            "0.0.0.0",
            "0",
            "::",
            "::127.0.0.1",
            "[::1]:22",
        ] {
            assert_eq!(RemoteHost::new(local, "sshd"), None, "{local}");
        }
        // This machine's own name (Debian's /etc/hosts maps it to 127.0.1.1).
        let host = nix::unistd::gethostname().unwrap();
        let host = host.to_string_lossy().to_string();
        if !host.is_empty() {
            assert_eq!(RemoteHost::new(&host, "sshd"), None, "{host}");
            assert_eq!(
                RemoteHost::new(&host.to_uppercase(), "sshd"),
                None,
                "{host}"
            );
        }
        for remote in [
            "192.0.2.7",
            "128.0.0.1",
            "::2",
            "::ffff:192.0.2.7",
            "2001:db8::1",
            "localhost.example.com",
            "mylocalhost",
            "host.example.org",
            "128.1",
            "10.0.0.1",
        ] {
            assert!(RemoteHost::new(remote, "sshd").is_some(), "{remote}");
        }
    }

    #[test]
    fn the_tag_binds_the_service_and_the_parts_cannot_run_into_each_other() {
        let key = secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let tag = |rhost, service| RemoteHost::new(rhost, service).unwrap().tag(&key).unwrap();
        assert_ne!(tag("192.0.2.7", "sshd"), tag("192.0.2.7", "sudo"));
        assert_eq!(tag("192.0.2.7", "sshd"), tag("192.0.2.7", "sshd"));
        // The same bytes split differently between the two parts.
        assert_ne!(tag("c", "ab"), tag("bc", "a"));
    }

    #[test]
    fn the_tag_is_keyed_with_the_secret_and_is_not_a_plain_hash() {
        use sha2::{Digest, Sha256};
        let host = RemoteHost::new("192.0.2.7", "sshd").unwrap();
        let a = host
            .tag(&secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))
            .unwrap();
        let b = host
            .tag(&secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))
            .unwrap();
        assert_ne!(a, b, "another secret gives another tag");
        let plain: [u8; 32] = Sha256::digest(b"192.0.2.7").into();
        assert_ne!(a, plain);
        let other = RemoteHost::new("192.0.2.8", "sshd").unwrap();
        assert_ne!(
            a,
            other
                .tag(&secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))
                .unwrap()
        );
        assert!(host.tag(&secret("not base32!")).is_err());
    }

    #[test]
    fn a_host_passes_only_strictly_within_the_grace_period_and_never_from_the_future() {
        let hosts = vec![RememberedHost {
            rhost_tag: [1; 32],
            time: 1000,
        }];
        assert_eq!(passed_within(&hosts, &[1; 32], 1000, 60), Some(0));
        assert_eq!(passed_within(&hosts, &[1; 32], 1059, 60), Some(59));
        assert_eq!(passed_within(&hosts, &[1; 32], 1060, 60), None);
        assert_eq!(passed_within(&hosts, &[1; 32], 999, 60), None);
        assert_eq!(passed_within(&hosts, &[2; 32], 1000, 60), None);
        assert_eq!(passed_within(&hosts, &[1; 32], 1000, 0), None);
    }

    #[test]
    fn the_list_keeps_the_most_recent_hosts_once_each() {
        let mut hosts = Vec::new();
        for i in 0..MAX_HOSTS as u8 + 3 {
            remember(
                &mut hosts,
                RememberedHost {
                    rhost_tag: [i; 32],
                    time: 100 + u64::from(i),
                },
            );
        }
        assert_eq!(hosts.len(), MAX_HOSTS);
        assert!(!hosts.iter().any(|h| h.rhost_tag[0] < 3));
        remember(
            &mut hosts,
            RememberedHost {
                rhost_tag: [5; 32],
                time: 999,
            },
        );
        assert_eq!(hosts.len(), MAX_HOSTS);
        let fives: Vec<_> = hosts.iter().filter(|h| h.rhost_tag == [5; 32]).collect();
        assert_eq!((fives.len(), fives[0].time), (1, 999));
    }
}
