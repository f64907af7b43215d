//! Building the [`MeasurementReport`] a UE sends from its measurement of every cell.

use edgeshift_proto::{CellId, UeId};

use crate::MeasurementReport;

/// The report a UE at `pos` served by `serving` sends from its measurement `rsrp` (dBm)
/// of every cell; `None` if the serving cell was not measured.
#[must_use]
pub fn measurement_report(
    ue: UeId,
    serving: CellId,
    rsrp: &[(CellId, f64)],
    pos: [f64; 2],
) -> Option<MeasurementReport> {
    let &(_, serving_dbm) = rsrp.iter().find(|(c, _)| *c == serving)?;
    Some(MeasurementReport {
        ue,
        serving_dbm,
        neighbours: rsrp
            .iter()
            .filter(|(c, _)| *c != serving)
            .copied()
            .collect(),
        position: Some(pos),
    })
}
