//! `edgeshift bench isolation` (see `edgeshift_sim::isolation`): prints a normal service's
//! answer times alone and beside a runaway guest on the same server; asserts nothing.

use edgeshift_sim::DEFAULT_FUEL_PER_INPUT;

/// Options of `bench isolation`.
#[derive(clap::Args)]
pub(crate) struct IsolationArgs {
    /// Inputs per service.
    #[arg(long, default_value_t = 200)]
    inputs: u64,
    /// Fuel per input (the time slice).
    #[arg(long, default_value_t = DEFAULT_FUEL_PER_INPUT)]
    fuel: u64,
}

pub(crate) fn run_bench(a: &IsolationArgs) -> anyhow::Result<bool> {
    println!(
        "one ME server: the counter sample beside a guest that loops forever on every input; \
         fuel per input {}, {} inputs each\n",
        a.fuel, a.inputs
    );
    println!(
        "{:<24} {:<20} {:>10} {:>10} {:>10}",
        "guest calls", "normal service", "p50 ms", "p99 ms", "max ms"
    );
    for (mode, offload) in [("in the role's calls", false), ("jobs on threads", true)] {
        for (name, beside) in [("alone", false), ("beside the runaway", true)] {
            let mut w = edgeshift_sim::isolation::isolation(a.inputs, a.fuel, beside, offload)?;
            let max = w.iter().copied().fold(0.0, f64::max);
            println!(
                "{mode:<24} {name:<20} {:>10.3} {:>10.3} {max:>10.3}",
                crate::summary::pct(&mut w, 0.5),
                crate::summary::pct(&mut w, 0.99)
            );
        }
    }
    Ok(true)
}
