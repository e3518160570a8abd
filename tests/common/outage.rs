//! A TCP proxy that makes PostgreSQL go away and come back, for the fault tests.

/// A TCP proxy in front of PostgreSQL that can go away: every open connection cut and
/// its port closed (connections refused) until it comes back on the same port; to the
/// service, the database restarting.
pub struct Outage {
    pub port: u16,
    down: tokio::sync::watch::Sender<bool>,
}

impl Outage {
    pub async fn in_front_of(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, _) = tokio::sync::watch::channel(false);
        let states = down.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            let mut state = states.subscribe();
            loop {
                let open = match listener.take() {
                    Some(open) => open,
                    None => loop {
                        if let Ok(open) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                            break open;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    },
                };
                loop {
                    tokio::select! {
                        accepted = open.accept() => {
                            let Ok((mut client, _)) = accepted else { continue };
                            let mut cut = states.subscribe();
                            tokio::spawn(async move {
                                let Ok(mut server) = tokio::net::TcpStream::connect(target).await
                                else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                    _ = cut.wait_for(|down| *down) => {}
                                }
                            });
                        }
                        _ = state.wait_for(|down| *down) => break,
                    }
                }
                drop(open); // the port is closed: connections are refused
                if state.wait_for(|down| !*down).await.is_err() {
                    return;
                }
            }
        });
        Self { port, down }
    }

    /// Cuts every open connection and closes the port until [`Outage::end`].
    pub fn begin(&self) {
        self.down.send_replace(true);
    }

    pub fn end(&self) {
        self.down.send_replace(false);
    }
}

impl Outage {
    /// The proxy in front of the PostgreSQL server that `MDT_TEST_POSTGRES_URL` names.
    pub async fn in_front_of_postgres() -> Self {
        let admin = std::env::var("MDT_TEST_POSTGRES_URL").expect("MDT_TEST_POSTGRES_URL");
        let host_port = match authority(&admin) {
            with_port if with_port.contains(':') => with_port,
            host => format!("{host}:5432"),
        };
        let target = tokio::net::lookup_host(host_port).await.unwrap().next().unwrap();
        Self::in_front_of(target).await
    }

    /// Points the settings' database URL at the proxy.
    pub fn reroute(&self, s: &mut mdt_coordinator::config::Settings) {
        use secrecy::ExposeSecret;
        let url = s.database.url.expose_secret().to_string();
        let via = url.replacen(&authority(&url), &format!("127.0.0.1:{}", self.port), 1);
        s.database.url = secrecy::SecretString::from(via);
    }
}

/// The `host[:port]` of a database URL.
fn authority(url: &str) -> String {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    let after_scheme = after_at.split_once("://").map_or(after_at, |(_, rest)| rest);
    after_scheme.split('/').next().unwrap_or_default().to_string()
}
