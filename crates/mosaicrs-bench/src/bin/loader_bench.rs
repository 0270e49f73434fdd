//! `mosaicrs-loader-bench`: see `mosaicrs_bench::loader`.

use clap::Parser;
use mosaicrs_bench::loader::{print_table, run, BenchArgs};

fn main() -> anyhow::Result<()> {
    let args = BenchArgs::parse();
    if args.epochs_from_stdin {
        return mosaicrs_bench::epochs::serve(
            &args,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        );
    }
    let report = run(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}
