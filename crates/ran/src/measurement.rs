//! Building the [`MeasurementReport`] a UE sends from its measurement of every cell.

use edgeshift_proto::{CellId, UeId};

use crate::MeasurementReport;

/// The most neighbours one report names: 3GPP's `maxCellReport` (TS 38.331). A UE in a
/// city hears dozens of cells; only the strongest can be handover targets, and every cell
/// a report names costs each prediction from it.
pub const MAX_REPORTED_NEIGHBOURS: usize = 8;

/// The report a UE at `pos` served by `serving` sends from its measurement `rsrp` (dBm)
/// of every cell: the serving cell and its [`MAX_REPORTED_NEIGHBOURS`] strongest
/// neighbours, in the order of `rsrp`; `None` if the serving cell was not measured.
#[must_use]
pub fn measurement_report(
    ue: UeId,
    serving: CellId,
    rsrp: &[(CellId, f64)],
    pos: [f64; 2],
) -> Option<MeasurementReport> {
    let &(_, serving_dbm) = rsrp.iter().find(|(c, _)| *c == serving)?;
    let mut strongest: Vec<usize> = (0..rsrp.len()).filter(|i| rsrp[*i].0 != serving).collect();
    if strongest.len() > MAX_REPORTED_NEIGHBOURS {
        // Strongest first, the earlier of equals first: a total order, so the selection
        // is the same whatever the algorithm.
        strongest.select_nth_unstable_by(MAX_REPORTED_NEIGHBOURS - 1, |a, b| {
            rsrp[*b].1.total_cmp(&rsrp[*a].1).then(a.cmp(b))
        });
        strongest.truncate(MAX_REPORTED_NEIGHBOURS);
        strongest.sort_unstable();
    }
    Some(MeasurementReport {
        ue,
        serving_dbm,
        neighbours: strongest.into_iter().map(|i| rsrp[i]).collect(),
        position: Some(pos),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_strongest_neighbours_in_measured_order() {
        // Measured weakest first (cell 12 to 1); cells 10 and 9 tie for eighth place, and
        // the earlier measured (10) is named.
        let mut rsrp: Vec<(CellId, f64)> =
            (1..=12).rev().map(|c| (CellId(c), -f64::from(c))).collect();
        rsrp.iter_mut()
            .filter(|n| n.0 == CellId(10))
            .for_each(|n| n.1 = -9.0);
        let Some(r) = measurement_report(UeId(1), CellId(3), &rsrp, [0.0, 0.0]) else {
            panic!("the serving cell was measured");
        };
        assert_eq!(r.serving_dbm, -3.0);
        let cells: Vec<u32> = r.neighbours.iter().map(|n| n.0.0).collect();
        assert_eq!(cells, [10, 8, 7, 6, 5, 4, 2, 1]);
        assert!(measurement_report(UeId(1), CellId(13), &rsrp, [0.0, 0.0]).is_none());
    }
}
