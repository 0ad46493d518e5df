//! Sampling of a long metric history for `get-history-bulk-interval`, without sorting it.
//!
//! MLflow 3.17 splits the points of a run's metric (ordered by step, timestamp, value, is_nan) into
//! `max_results` NTILE buckets, keeps the first point of each and puts the last point of the range in place
//! of the last bucket's. Done that way in SQL, the database numbers and sorts every row: a million-point
//! metric costs seconds. The same points are found here by position instead:
//!
//! 1. count the rows of the range (a covering index on `(run_uuid, key, step)`);
//! 2. compute the positions NTILE would start its buckets at ([`SamplePlan`]);
//! 3. walk the steps of the range in index order, no sort, and note at each target position its step and
//!    its place among the points of that step;
//! 4. fetch only those points: rows of the target steps numbered within their step by (timestamp, value,
//!    is_nan), kept when their number is a target place.
//!
//! The result is MLflow's to the point, for every database.

use super::connection::{db_error, query};
use super::{placeholders, SqlStore};
use crate::search::Dialect;
use ferroflow_core::Result;
use ferroflow_proto::tracking::Metric;
use std::collections::{BTreeMap, BTreeSet};

/// Distinct steps fetched in one statement (each bound once, plus their places).
const STEPS_PER_STATEMENT: usize = 400;

/// The positions, in the ordered rows of a range, of the points MLflow's sampling keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SamplePlan {
    total: u64,
    buckets: u64,
}

impl SamplePlan {
    /// The plan for `total` rows sampled to `max_results` points (at least one).
    pub(crate) fn new(total: u64, max_results: usize) -> Self {
        let buckets = u64::try_from(max_results.max(1)).unwrap_or(u64::MAX);
        Self { total, buckets }
    }

    /// Whether every row is kept (NTILE gives each row a bucket of its own).
    pub(crate) fn keeps_all(&self) -> bool {
        self.total <= self.buckets
    }

    /// The kept positions in ascending order: the first row of every NTILE bucket but the last, then the
    /// last row of the range. (NTILE makes the first `total % buckets` buckets one row longer.)
    pub(crate) fn positions(&self) -> Vec<u64> {
        if self.total == 0 {
            return Vec::new();
        }
        if self.keeps_all() {
            return (0..self.total).collect();
        }
        let size = self.total / self.buckets;
        let longer = self.total % self.buckets;
        let start = |bucket: u64| bucket * size + bucket.min(longer);
        let mut positions: Vec<u64> = (0..self.buckets - 1).map(start).collect();
        positions.push(self.total - 1);
        positions
    }
}

/// A kept point, located by its step and its place (0-based) among the points of that step.
#[derive(Debug, Clone, Copy)]
struct Target {
    step: i64,
    place: u64,
}

/// Locates kept positions while the range's steps stream past in ascending order.
struct Locator<'a> {
    wanted: std::iter::Peekable<std::iter::Copied<std::slice::Iter<'a, u64>>>,
    position: u64,
    /// The step being walked and the position of its first point.
    group: Option<(i64, u64)>,
    targets: Vec<Target>,
}

impl<'a> Locator<'a> {
    /// A locator of `positions` (ascending).
    fn new(positions: &'a [u64]) -> Self {
        Self {
            wanted: positions.iter().copied().peekable(),
            position: 0,
            group: None,
            targets: Vec::with_capacity(positions.len()),
        }
    }

    /// Takes the next step; answers whether positions are still wanted.
    fn push(&mut self, step: i64) -> bool {
        let group_start = match self.group {
            Some((group_step, start)) if group_step == step => start,
            _ => {
                self.group = Some((step, self.position));
                self.position
            }
        };
        if self.wanted.peek() == Some(&self.position) {
            self.targets.push(Target {
                step,
                place: self.position - group_start,
            });
            self.wanted.next();
        }
        self.position += 1;
        self.wanted.peek().is_some()
    }
}

impl SqlStore {
    /// MLflow's sampled points of `key` of one run with `lo <= step <= hi`, in order.
    pub(crate) async fn sample_metric_history(
        &self,
        run_id: &str,
        key: &str,
        (lo, hi): (i64, i64),
        max_results: usize,
    ) -> Result<Vec<Metric>> {
        const RANGE: &str =
            "FROM metrics WHERE run_uuid = ? AND \"key\" = ? AND step >= ? AND step <= ?";
        let range = |sql: String| query(sql).bind(run_id).bind(key).bind(lo).bind(hi);
        let total: i64 = self
            .pools
            .fetch_optional(range(format!("SELECT COUNT(*) AS total {RANGE}")))
            .await
            .map_err(db_error)?
            .map(|row| row.get("total"))
            .transpose()?
            .unwrap_or(0);
        let plan = SamplePlan::new(u64::try_from(total).unwrap_or(0), max_results);
        if plan.keeps_all() {
            let rows = self
                .pools
                .fetch_all(range(format!(
                    "SELECT {} {RANGE} ORDER BY step, timestamp, value, is_nan",
                    super::tracking::METRIC_COLUMNS
                )))
                .await
                .map_err(db_error)?;
            return rows
                .iter()
                .map(|row| super::tracking::metric_from_row(row, true))
                .collect();
        }
        let positions = plan.positions();
        // The steps in index order; only the target positions are remembered.
        let mut locator = Locator::new(&positions);
        self.pools
            .for_each_i64(
                range(format!("SELECT step {RANGE} ORDER BY step")),
                |step| locator.push(step),
            )
            .await
            .map_err(db_error)?;
        self.fetch_targets(run_id, key, &locator.targets).await
    }

    /// The points at `targets` (ascending), in that order.
    async fn fetch_targets(
        &self,
        run_id: &str,
        key: &str,
        targets: &[Target],
    ) -> Result<Vec<Metric>> {
        let mut by_step: BTreeMap<i64, BTreeSet<u64>> = BTreeMap::new();
        for target in targets {
            by_step.entry(target.step).or_default().insert(target.place);
        }
        let steps: Vec<(i64, BTreeSet<u64>)> = by_step.into_iter().collect();
        let mut metrics = Vec::with_capacity(targets.len());
        // Without statistics (MLflow's schema has no sqlite_stat1, and ferroflow adds none) SQLite prefers the
        // primary key's covering index, which starts with `key` alone, and would read every point of the
        // metric in every run; the `(run_uuid, key, step)` index reads only the asked steps.
        let by_step_index = match self.dialect() {
            Dialect::Sqlite => " INDEXED BY index_metrics_run_uuid_key_step",
            Dialect::Postgres | Dialect::MySql => "",
        };
        for chunk in steps.chunks(STEPS_PER_STATEMENT) {
            // Places asked of one step may match rows of another; those are dropped below.
            let places: BTreeSet<u64> = chunk
                .iter()
                .flat_map(|(_, places)| places.iter().copied())
                .collect();
            let sql = format!(
                "SELECT {columns}, place FROM ( \
                   SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY step ORDER BY timestamp, value, is_nan) - 1 AS place \
                   FROM metrics{index} WHERE run_uuid = ? AND \"key\" = ? AND step IN ({steps})) AS numbered \
                 WHERE place IN ({places}) ORDER BY step, place",
                columns = super::tracking::METRIC_COLUMNS,
                index = by_step_index,
                steps = placeholders(chunk.len()),
                places = placeholders(places.len()),
            );
            let rows = self
                .pools
                .fetch_all(
                    query(sql)
                        .bind(run_id)
                        .bind(key)
                        .bind_each(chunk.iter().map(|(step, _)| *step))
                        .bind_each(
                            places
                                .iter()
                                .map(|place| i64::try_from(*place).unwrap_or(i64::MAX)),
                        ),
                )
                .await
                .map_err(db_error)?;
            for row in &rows {
                let step: i64 = row.get("step")?;
                let place: i64 = row.get("place")?;
                let wanted = chunk
                    .binary_search_by_key(&step, |(step, _)| *step)
                    .ok()
                    .is_some_and(|index| {
                        u64::try_from(place).is_ok_and(|place| chunk[index].1.contains(&place))
                    });
                if wanted {
                    metrics.push(super::tracking::metric_from_row(row, true)?);
                }
            }
        }
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NTILE as SQL defines it, then MLflow's rule for the last point, by brute force.
    fn mlflow_positions(total: u64, buckets: u64) -> Vec<u64> {
        if total <= buckets {
            return (0..total).collect();
        }
        let (size, longer) = (total / buckets, total % buckets);
        let mut bucket_of = Vec::new();
        for bucket in 0..buckets {
            let rows = if bucket < longer { size + 1 } else { size };
            bucket_of.extend(std::iter::repeat_n(bucket, usize::try_from(rows).unwrap()));
        }
        let mut kept: Vec<u64> = (0..total)
            .filter(|&row| row == 0 || bucket_of[row as usize] != bucket_of[row as usize - 1])
            .collect();
        let last = total - 1;
        if kept.last() != Some(&last) {
            if kept.len() as u64 >= buckets {
                kept.pop();
            }
            kept.push(last);
        }
        kept
    }

    #[test]
    fn positions_are_mlflows_ntile_sample() {
        for total in 0..120u64 {
            for buckets in 1..40u64 {
                let plan = SamplePlan::new(total, buckets as usize);
                assert_eq!(
                    plan.positions(),
                    mlflow_positions(total, buckets),
                    "total {total}, buckets {buckets}"
                );
            }
        }
        let plan = SamplePlan::new(1_000_000, 2500);
        let positions = plan.positions();
        assert_eq!(positions.len(), 2500);
        assert_eq!(positions[..3], [0, 400, 800]);
        assert_eq!(positions.last(), Some(&999_999));
    }

    #[test]
    fn targets_are_placed_within_their_step() {
        // Steps 0 0 0 1 2 2 5 5 5 5: positions 0, 2, 3, 5, 9.
        let steps = [0, 0, 0, 1, 2, 2, 5, 5, 5, 5];
        let locate = |positions: &[u64]| {
            let mut locator = Locator::new(positions);
            let mut pushed = 0;
            for step in steps {
                pushed += 1;
                if !locator.push(step) {
                    break;
                }
            }
            (
                locator
                    .targets
                    .iter()
                    .map(|t| (t.step, t.place))
                    .collect::<Vec<_>>(),
                pushed,
            )
        };
        assert_eq!(
            locate(&[0, 2, 3, 5, 9]),
            (vec![(0, 0), (0, 2), (1, 0), (2, 1), (5, 3)], 10)
        );
        // The walk stops at the last wanted position.
        assert_eq!(locate(&[1, 4]), (vec![(0, 1), (2, 0)], 5));
    }
}
