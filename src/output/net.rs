//! The connections Tally opens itself (the enhanced RTMP publisher, the HLS uploader): TCP
//! with a timeout on every read and write, or TLS over it through rustls, checking the
//! server's certificate against the system's authorities or the ones a file gives.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a certificate-authority file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaFileProblem {
    #[error("{0}")]
    Unreadable(io::ErrorKind),
    #[error("it is not PEM")]
    NotPem,
    #[error("it holds no certificate Tally can use")]
    NoCertificates,
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetError {
    #[error("cannot find the address of {host}: {kind}")]
    Resolve { host: String, kind: io::ErrorKind },
    /// Connecting failed; `error` keeps what the system said, for the caller to word.
    #[error("{kind} connecting")]
    Connect { kind: io::ErrorKind },
    #[error("no answer connecting within {seconds} s", seconds = timeout.as_secs_f64())]
    ConnectTimedOut { timeout: Duration },
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    #[error("`{0}` is not a host name TLS can check a certificate for")]
    TlsName(String),
    #[error("the certificate authorities in {path}: {problem}")]
    CaFile {
        path: PathBuf,
        problem: CaFileProblem,
    },
    #[error("no certificate authorities found on this system (install ca-certificates)")]
    NoSystemCertificates,
}

impl NetError {
    /// The TLS failure inside a read or write's error. rustls does its handshake on the
    /// first read or write, so a certificate it refuses arrives as an I/O error ("invalid
    /// data"), which alone would hide why.
    pub fn tls_cause(error: &io::Error) -> Option<NetError> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(|tls| NetError::Tls(tls.clone()))
    }
}

/// Bytes to and from a server: TCP, or TLS over TCP.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    /// Connects to `host:port` (TLS when `tls`, checked against `ca_file`'s authorities or
    /// the system's), with `timeout` on the connect and on every read and write.
    pub fn open(
        host: &str,
        port: u16,
        tls: bool,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, NetError> {
        let socket = open_socket(host, port, timeout)?;
        if !tls {
            return Ok(Transport::Plain(socket));
        }
        let config = tls_config(ca_file)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| NetError::TlsName(host.to_string()))?;
        let connection = rustls::ClientConnection::new(config, name).map_err(NetError::Tls)?;
        Ok(Transport::Tls(Box::new(rustls::StreamOwned::new(
            connection, socket,
        ))))
    }

    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(stream) => stream.get_ref(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.read(buffer),
            Transport::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write(bytes),
            Transport::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(socket) => socket.flush(),
            Transport::Tls(stream) => stream.flush(),
        }
    }
}

fn open_socket(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, NetError> {
    let addresses: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|error| NetError::Resolve {
            host: host.to_string(),
            kind: error.kind(),
        })?
        .collect();
    let mut last = NetError::Resolve {
        host: host.to_string(),
        kind: io::ErrorKind::NotFound,
    };
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(socket) => {
                let configured = socket
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| socket.set_write_timeout(Some(timeout)))
                    .and_then(|()| socket.set_nodelay(true));
                configured.map_err(|error| connect_error(timeout, &error))?;
                return Ok(socket);
            }
            Err(error) => last = connect_error(timeout, &error),
        }
    }
    Err(last)
}

fn connect_error(timeout: Duration, error: &io::Error) -> NetError {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            NetError::ConnectTimedOut { timeout }
        }
        kind => NetError::Connect { kind },
    }
}

/// TLS that checks the server's certificate: against `ca_file`'s authorities when given
/// (a private server), or the system's.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, NetError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let problem = |problem| NetError::CaFile {
                path: path.to_path_buf(),
                problem,
            };
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|error| problem(pem_problem(error)))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| problem(pem_problem(error)))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(problem(CaFileProblem::NoCertificates));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!("system certificates: {error}");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(NetError::NoSystemCertificates);
            }
        }
    }
    // The crypto is ring's, the only provider built in (see Cargo.toml).
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn pem_problem(error: rustls::pki_types::pem::Error) -> CaFileProblem {
    match error {
        rustls::pki_types::pem::Error::Io(error) => CaFileProblem::Unreadable(error.kind()),
        _ => CaFileProblem::NotPem,
    }
}
