//! sockhost-exec: an existing program run for each request, the inetd /
//! xinetd / tcpserver / systemd `Accept=yes` way (`libsockhost_exec.so`).
//!
//! - Stream, `wait = false`: the program's fds 0 and 1 are the connection.
//! - Dgram, `wait = false`: the datagram is its stdin (then end of file);
//!   what it writes to stdout, up to `max_packet_size` bytes, is sent back
//!   to the sender as one datagram.
//! - `wait = true`: the plugin takes the listening socket (ABI 1.2
//!   `take_listener`); the program gets it on fds 0 and 1 and serves it;
//!   the host polls the socket again only once it exited.
//!
//! fd 2 is the worker's log relay (`stderr = "log"`, each line a log
//! record with the listener and the program's pid), the connection, or
//! /dev/null. The environment is `env`/`pass_env`/PATH plus the request's
//! variables (see `addr`). The program's exit status or signal and its run
//! time go to the request's access log line (`set_detail`); a non-zero
//! status or a signal fails the request. In fork mode (stream, or `wait`,
//! without `max_runtime`) the request child becomes the program (execve
//! in its place, ABI 1.2 `exec_request`: the worker reaps it and logs its
//! status); otherwise the program is spawned (posix_spawn) and waited for
//! by the thread or request child that started it. Either way none is
//! left a zombie, `max_children`/`max_threads` bound how many run, and
//! drain and stop wait for them as for any request in flight.
//!
//! Contract for the host: needs ABI 1.2 for `wait` and `stderr = "log"`;
//! from an older host `wait` is refused at create and the log becomes
//! /dev/null.

mod addr;
mod run;
pub mod settings;

use settings::{Settings, Stderr};
use sockhost_sdk::{export_handler, Handler, Kind, Listener, Mixin, Request, Result};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// One listener's program.
pub struct Exec {
    s: Settings,
    listener: String,
    family: i32,
    kind: Kind,
    log_fd: Option<RawFd>,
    max_packet_size: usize,
    /// Fork mode without `max_runtime`, fds 0/1 a socket: the request
    /// child may become the program itself (no second process).
    direct: bool,
}

impl Handler for Exec {
    fn create(l: &Listener) -> Result<Self> {
        let s = Settings::parse(&l.config, l.kind == Kind::Stream)?;
        if s.wait && l.listen_fd.is_some() && !sockhost_sdk::take_listener() {
            return Err("wait = true needs a host with ABI 1.2 (take_listener)".into());
        }
        let max_packet_size = match l.max_packet_size {
            0 => 65507,
            n => n,
        };
        let direct =
            l.mixin == Mixin::Fork && s.max_runtime.is_none() && (s.wait || l.kind == Kind::Stream);
        Ok(Exec {
            direct,
            s,
            listener: l.name.clone(),
            family: l.family,
            kind: l.kind,
            log_fd: l.log_fd,
            max_packet_size,
        })
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        let fd = req.fd();
        let stream = self.kind == Kind::Stream;
        let env = addr::request_env(self.family, stream, req.client_addr(), fd, &self.listener);
        let mut cmd = self.command(env);
        let ended = if self.s.wait || stream {
            cmd.stdin(Stdio::from(run::dup(fd)?))
                .stdout(Stdio::from(run::dup(fd)?))
                .stderr(self.stderr(Some(fd))?);
            if self.direct && req.exec_request() {
                // The host now reads this process's exit status as the
                // program's; exec only returns on failure.
                let e = cmd.exec();
                return Err(self.spawn_error(e).into());
            }
            let running = run::Running::start(&mut cmd, self.s.max_runtime)
                .map_err(|e| self.spawn_error(e))?;
            drop(cmd); // our copies of its fds
            running.wait()?
        } else {
            let (stdin, feed) = run::pipe()?;
            if let Err(e) = fill(feed, req.data()) {
                let detail = e.to_string();
                req.set_detail(&detail);
                return Err(detail.into());
            }
            let (out_r, out_w) = run::pipe()?;
            cmd.stdin(Stdio::from(stdin))
                .stdout(Stdio::from(out_w))
                .stderr(self.stderr(None)?);
            let mut running = run::Running::start(&mut cmd, self.s.max_runtime)
                .map_err(|e| self.spawn_error(e))?;
            drop(cmd);
            let reply = running.collect(out_r, self.max_packet_size)?;
            let ended = running.wait()?;
            if !reply.is_empty() {
                req.reply(&reply)?;
            }
            ended
        };
        let detail = ended.describe();
        req.set_detail(&detail);
        if ended.success() {
            Ok(())
        } else {
            Err(format!("{} {detail}", self.s.path.display()).into())
        }
    }
}

impl Exec {
    /// The program with its arguments, environment and folder; stdio is
    /// the caller's to set.
    fn command(&self, request_env: Vec<(String, String)>) -> Command {
        let mut cmd = Command::new(&self.s.path);
        cmd.arg0(&self.s.argv0)
            .args(&self.s.args)
            .env_clear()
            .envs(self.s.env.iter().map(|(k, v)| (k, v)))
            .envs(request_env)
            .current_dir(&self.s.directory);
        cmd
    }

    /// fd 2 for the program; `conn`: the connection (or listening socket).
    fn stderr(&self, conn: Option<RawFd>) -> std::io::Result<Stdio> {
        Ok(match (self.s.stderr, self.log_fd, conn) {
            (Stderr::Log, Some(log), _) => Stdio::from(run::dup(log)?),
            (Stderr::Connection, _, Some(c)) => Stdio::from(run::dup(c)?),
            _ => Stdio::null(),
        })
    }

    fn spawn_error(&self, e: std::io::Error) -> String {
        format!("cannot run {}: {e}", self.s.path.display())
    }
}

/// Write the datagram into the program's stdin pipe, then close it. The
/// pipe is grown first when the datagram is larger than its buffer, so
/// this never waits for the program; a datagram the pipe cannot be grown
/// to hold (past /proc/sys/fs/pipe-max-size) is refused, naming its size.
fn fill(feed: OwnedFd, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    if data.len() > 4096 {
        // SAFETY: F_GETPIPE_SZ on an fd of ours, no argument.
        let have = unsafe { libc::fcntl(feed.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if have < 0 || (have as usize) < data.len() {
            let want = libc::c_int::try_from(data.len()).unwrap_or(libc::c_int::MAX);
            // SAFETY: F_SETPIPE_SZ on an fd of ours, integer argument.
            let got = unsafe { libc::fcntl(feed.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
            if got < 0 || (got as usize) < data.len() {
                let why = if got < 0 {
                    std::io::Error::last_os_error().to_string()
                } else {
                    format!("it holds {got}")
                };
                return Err(std::io::Error::other(format!(
                    "datagram of {} bytes does not fit the program's stdin pipe ({why}; see /proc/sys/fs/pipe-max-size)",
                    data.len()
                )));
            }
        }
    }
    let mut f = std::fs::File::from(feed);
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::FromRawFd;

    #[test]
    fn a_datagram_larger_than_the_default_pipe_goes_in_whole() {
        let (read, feed) = run::pipe().expect("pipe");
        let data = vec![7u8; 200_000];
        fill(feed, &data).expect("the pipe is grown to hold it");
        let mut got = Vec::new();
        std::fs::File::from(read)
            .read_to_end(&mut got)
            .expect("read");
        assert_eq!(got, data);
    }

    /// When the buffer cannot be grown (here: not a pipe), the datagram is
    /// refused instead of blocking on a write nobody reads.
    #[test]
    fn a_datagram_the_pipe_cannot_hold_is_refused() {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two fds on success.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: two fresh fds we own.
        let (feed, _peer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let e = fill(feed, &vec![0u8; 4 << 20]).expect_err("refused");
        assert!(e.to_string().contains("4194304 bytes does not fit"), "{e}");
    }
}

export_handler!(Exec);
