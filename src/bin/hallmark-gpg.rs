//! `hallmark-gpg`: the gpg-compatible signing front end as its own program, for tools that
//! take a gpg path (`rpmsign --define "%__gpg /usr/bin/hallmark-gpg"`) and pass their own
//! argv[0]. The same as `hallmark gpg`.

fn main() {
    std::process::exit(hallmark::cli::gpg::main(
        std::env::args_os().skip(1).collect(),
    ));
}
