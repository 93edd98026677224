// SPDX-License-Identifier: GPL-2.0

//! The generic netlink client: resolves the `rust_nf` family and exchanges requests and
//! replies whose attribute payloads use the engine's wire format.

use std::fmt;
use std::io;

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, ParseableParametrized,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};
use rnf_engine::wire;

/// What went wrong talking to the module.
#[derive(Debug)]
pub enum Error {
    /// The `rust_nf` generic netlink family does not exist: the module is not loaded.
    NotLoaded,
    /// The kernel answered with an error code and, maybe, an extended ack message.
    Kernel { errno: i32, msg: Option<String> },
    /// Socket trouble.
    Io(io::Error),
    /// A reply we could not decode.
    Decode(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotLoaded => write!(
                f,
                "the rust_nf module is not loaded (no generic netlink family \"{}\"); load it with insmod rust_nf.ko",
                wire::FAMILY_NAME
            ),
            Error::Kernel { errno, msg } => {
                let text = strerror(*errno);
                let hint = if *errno == EPERM {
                    " (you need CAP_NET_ADMIN in this network namespace)"
                } else {
                    ""
                };
                match msg {
                    Some(m) => write!(f, "{text}: {m}{hint}"),
                    None => write!(f, "{text}{hint}"),
                }
            }
            Error::Io(e) => write!(f, "netlink: {e}"),
            Error::Decode(e) => write!(f, "cannot decode the kernel's answer: {e}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

const EPERM: i32 = 1;

/// The C library's text for an errno, without Rust's " (os error N)" suffix.
fn strerror(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
const ENOENT: i32 = 2;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A rust_nf generic netlink message: a command and a raw attribute payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RnfMessage {
    /// The command.
    pub cmd: u8,
    /// Attributes, encoded with [`wire::Encoder`].
    pub attrs: Vec<u8>,
}

impl GenlFamily for RnfMessage {
    fn family_name() -> &'static str {
        wire::FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        wire::FAMILY_VERSION
    }
}

impl Emitable for RnfMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        buffer[..self.attrs.len()].copy_from_slice(&self.attrs);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for RnfMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(RnfMessage { cmd: header.cmd, attrs: buf.to_vec() })
    }
}

/// A connected generic netlink socket with the family resolved.
pub struct Client {
    socket: Socket,
    family_id: u16,
    seq: u32,
    /// The family's multicast groups: (name, id).
    groups: Vec<(String, u32)>,
}

impl Client {
    /// Opens a socket and resolves the `rust_nf` family.
    pub fn connect() -> Result<Self, Error> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Errors come back with the request header only, followed by the extended ack.
        socket.set_cap_ack(true)?;
        socket.set_ext_ack(true)?;
        let mut client = Client { socket, family_id: 0, seq: 0, groups: Vec::new() };
        client.family_id = client.resolve_family()?;
        Ok(client)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send<T>(&mut self, payload: T, flags: u16) -> Result<u32, Error>
    where
        NetlinkMessage<T>: Emitable,
        T: fmt::Debug,
        NetlinkPayload<T>: From<T>,
        T: netlink_packet_core::NetlinkSerializable,
    {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(seq)
    }

    /// Receives the replies to `seq` until the final ack or error (or, with `first`, until
    /// the first reply); returns the replies.
    fn receive<T>(&mut self, seq: u32, first: bool) -> Result<Vec<T>, Error>
    where
        T: netlink_packet_core::NetlinkDeserializable + fmt::Debug,
        T::Error: fmt::Display,
    {
        let mut out = Vec::new();
        loop {
            // Peek at the size first: a table can be far larger than any fixed buffer.
            let mut probe = [0u8; 16];
            let size = self.socket.recv(&mut &mut probe[..], libc::MSG_PEEK | libc::MSG_TRUNC)?;
            let mut buf = vec![0u8; size.max(16)];
            let n = self.socket.recv(&mut &mut buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<T>::deserialize(&buf[off..n])
                    .map_err(|e| Error::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::InnerMessage(m) => {
                            out.push(m);
                            if first {
                                return Ok(out);
                            }
                        }
                        NetlinkPayload::Error(e) => match e.code {
                            None => return Ok(out),
                            Some(code) => {
                                return Err(Error::Kernel {
                                    errno: -code.get(),
                                    msg: extack_message(&e.header),
                                })
                            }
                        },
                        NetlinkPayload::Done(d) if d.code < 0 => {
                            // A dump that failed part-way: the error closes it.
                            return Err(Error::Kernel {
                                errno: -d.code,
                                msg: wire::AttrIter::new(&d.extended_ack)
                                    .flatten()
                                    .find(|a| a.ty == NLMSGERR_ATTR_MSG)
                                    .and_then(|a| a.str().ok().map(str::to_string)),
                            });
                        }
                        NetlinkPayload::Done(_) => return Ok(out),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    fn resolve_family(&mut self) -> Result<u16, Error> {
        let mut msg = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(wire::FAMILY_NAME.to_string())],
        });
        msg.finalize();
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK)?;
        let replies = match self.receive::<GenlMessage<GenlCtrl>>(seq, false) {
            Err(Error::Kernel { errno, .. }) if errno == ENOENT => return Err(Error::NotLoaded),
            other => other?,
        };
        for a in replies.iter().flat_map(|m| m.payload.nlas.iter()) {
            if let GenlCtrlAttrs::McastGroups(groups) = a {
                for g in groups {
                    let name = g.iter().find_map(|x| match x {
                        McastGrpAttrs::Name(n) => Some(n.clone()),
                        _ => None,
                    });
                    let id = g.iter().find_map(|x| match x {
                        McastGrpAttrs::Id(i) => Some(*i),
                        _ => None,
                    });
                    if let (Some(n), Some(i)) = (name, id) {
                        self.groups.push((n, i));
                    }
                }
            }
        }
        replies
            .iter()
            .flat_map(|m| m.payload.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or(Error::NotLoaded)
    }

    /// Joins the family's multicast group `name` (joining may need CAP_NET_ADMIN).
    pub fn join(&mut self, name: &str) -> Result<(), Error> {
        let id = self.groups.iter().find(|g| g.0 == name).map(|g| g.1).ok_or(Error::NotLoaded)?;
        self.socket.add_membership(id).map_err(|e| match e.raw_os_error() {
            Some(errno) => Error::Kernel { errno, msg: None },
            None => Error::Io(e),
        })
    }

    /// Waits for the next multicast message of the family; returns its command and attribute
    /// payload.
    pub fn next_event(&mut self) -> Result<(u8, Vec<u8>), Error> {
        loop {
            let mut probe = [0u8; 16];
            let size = self.socket.recv(&mut &mut probe[..], libc::MSG_PEEK | libc::MSG_TRUNC)?;
            let mut buf = vec![0u8; size.max(16)];
            let n = self.socket.recv(&mut &mut buf[..], 0)?;
            // One netlink header (16 bytes), the generic header (4: cmd, version, reserved).
            if n < 20 {
                continue;
            }
            let len = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(n);
            let ty = u16::from_ne_bytes([buf[4], buf[5]]);
            if ty != self.family_id || len < 20 {
                continue;
            }
            return Ok((buf[16], buf[20..len].to_vec()));
        }
    }

    /// Makes room for requests of `bytes` (whole tables): raises the socket's send buffer,
    /// forcibly where we have CAP_NET_ADMIN (which changing a table needs anyway). A request
    /// that still does not fit is refused here, naming the limit.
    pub fn reserve_send(&mut self, bytes: usize) -> Result<(), Error> {
        self.raise_sndbuf(bytes);
        let have = self.sndbuf();
        // netlink_sendmsg() refuses a message longer than the send buffer less 32 bytes.
        let need = bytes.saturating_add(64);
        if need > have.saturating_sub(32) {
            return Err(Error::Kernel {
                errno: libc::EMSGSIZE,
                msg: Some(format!(
                    "the request is {need} bytes but this socket may send at most {} (net.core.wmem_max, \
                     raised only with CAP_NET_ADMIN); split the ruleset or raise the limit",
                    have.saturating_sub(32)
                )),
            });
        }
        Ok(())
    }

    /// The socket's send buffer (as the kernel counts it: twice what was asked for).
    fn sndbuf(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` outlive the call and `len` holds `v`'s size.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            usize::try_from(v).unwrap_or(0)
        } else {
            0
        }
    }

    fn raise_sndbuf(&mut self, bytes: usize) {
        use std::os::fd::AsRawFd;
        let want = libc::c_int::try_from(bytes.saturating_mul(2).saturating_add(65536)).unwrap_or(libc::c_int::MAX);
        let fd = self.socket.as_raw_fd();
        for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
            // SAFETY: `fd` is our open socket; the option value is a c_int that outlives the
            // call, and its size is passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&want as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                return;
            }
        }
    }

    /// Sends one command with an attribute payload; returns the attribute payloads of the
    /// replies (empty for a command that only acks).
    pub fn request(&mut self, cmd: u8, attrs: Vec<u8>) -> Result<Vec<Vec<u8>>, Error> {
        let (bytes, start) = (attrs.len(), std::time::Instant::now());
        if attrs.len() > 100_000 {
            self.reserve_send(attrs.len())?;
        }
        let mut msg = GenlMessage::from_payload(RnfMessage { cmd, attrs });
        msg.set_resolved_family_id(self.family_id);
        msg.finalize();
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK)?;
        let replies = self.receive::<GenlMessage<RnfMessage>>(seq, false);
        trace("request", cmd, bytes, start);
        Ok(replies?.into_iter().map(|m| m.payload.attrs).collect())
    }

    /// Sends a dump request; returns the attribute payloads of every message of the answer
    /// (a large table comes in many).
    pub fn dump(&mut self, cmd: u8, attrs: Vec<u8>) -> Result<Vec<Vec<u8>>, Error> {
        let (bytes, start) = (attrs.len(), std::time::Instant::now());
        let mut msg = GenlMessage::from_payload(RnfMessage { cmd, attrs });
        msg.set_resolved_family_id(self.family_id);
        msg.finalize();
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_DUMP)?;
        let replies = self.receive::<GenlMessage<RnfMessage>>(seq, false);
        trace("dump", cmd, bytes, start);
        Ok(replies?.into_iter().map(|m| m.payload.attrs).collect())
    }

    /// Sends a command that answers with one message and returns that message's attributes.
    /// No ack is asked for: after a large answer (a whole table) an ack would not fit in the
    /// socket's receive buffer, and the kernel would report an overrun instead.
    pub fn query(&mut self, cmd: u8, attrs: Vec<u8>) -> Result<Vec<u8>, Error> {
        let mut msg = GenlMessage::from_payload(RnfMessage { cmd, attrs });
        msg.set_resolved_family_id(self.family_id);
        msg.finalize();
        let seq = self.send(msg, NLM_F_REQUEST)?;
        let mut replies = self.receive::<GenlMessage<RnfMessage>>(seq, true)?;
        replies.pop().map(|m| m.payload.attrs).ok_or_else(|| Error::Decode("no answer".into()))
    }
}

/// With `RNFCTL_TRACE` set in the environment, each request to the module is written to
/// standard error as `rnfctl: KIND cmd=N bytes=M us=T` (which command, how much went to the
/// kernel, how long until its whole answer was in): tests and benchmarks see whether a change
/// was sent whole or as a delta, and what the kernel's side of it cost.
fn trace(kind: &str, cmd: u8, bytes: usize, start: std::time::Instant) {
    if std::env::var_os("RNFCTL_TRACE").is_some() {
        eprintln!("rnfctl: {kind} cmd={cmd} bytes={bytes} us={}", start.elapsed().as_micros());
    }
}

/// The extended ack message, from the bytes after the error code: the original request's
/// 16-byte header (the socket asks for capped acks), then `NLMSGERR_ATTR_*` attributes.
fn extack_message(rest: &[u8]) -> Option<String> {
    let attrs = rest.get(16..)?;
    wire::AttrIter::new(attrs)
        .flatten()
        .find(|a| a.ty == NLMSGERR_ATTR_MSG)
        .and_then(|a| a.str().ok().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extack_message_is_found_after_the_header() {
        let mut rest = vec![0u8; 16];
        let mut buf = [0u8; 64];
        let mut enc = wire::Encoder::new(&mut buf);
        enc.put_u32(2, 7);
        enc.put_str(NLMSGERR_ATTR_MSG, "no such hook slot");
        let n = enc.len();
        rest.extend_from_slice(&buf[..n]);
        assert_eq!(extack_message(&rest).as_deref(), Some("no such hook slot"));
        assert_eq!(extack_message(&rest[..16]), None);
    }

    #[test]
    fn message_emits_its_attributes() {
        let m = RnfMessage { cmd: wire::CMD_ZERO_COUNTERS, attrs: vec![8, 0, 4, 0, 3, 0, 0, 0] };
        let mut msg = GenlMessage::from_payload(m.clone());
        msg.set_resolved_family_id(0x20);
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        // genlmsghdr: cmd, version, reserved u16; then the attributes unchanged.
        assert_eq!(&buf[..4], &[wire::CMD_ZERO_COUNTERS, wire::FAMILY_VERSION, 0, 0]);
        assert_eq!(&buf[4..], &m.attrs[..]);
    }
}
