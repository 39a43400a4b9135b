//! The DNS daemon as a stand-alone binary for netctl's own root tests
//! (the product runs it as `rcompose __dns`).

fn main() {
    let args = std::env::args_os().skip(2);
    let code = match rcompose_netctl::dns::DnsDaemonArgs::from_args(args)
        .map_err(|e| e.to_string())
        .and_then(|config| rcompose_netctl::dns::serve(&config).map_err(|e| e.to_string()))
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rcompose-test-dns: {e}");
            1
        }
    };
    std::process::exit(code);
}
