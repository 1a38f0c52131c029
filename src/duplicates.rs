//! Near-duplicate groups: images whose embeddings are at least `threshold` similar, found by
//! asking the HNSW graph for each image's nearest neighbours and joining the pairs.

use std::collections::BTreeMap;

use clipsight_indexer::ModelId;

use crate::ann::{AnnIndex, AnnParams};
use crate::store::{ImageId, Store, StoreError};

/// Neighbours examined per image.
const NEIGHBOURS: usize = 16;

/// Groups (each sorted by id, at least two images) of near-duplicates, ordered by first id.
/// Uses `graph` when given, else builds one in memory.
pub fn groups(store: &Store, model: ModelId, threshold: f32, graph: Option<&AnnIndex>) -> Result<Vec<Vec<ImageId>>, StoreError> {
    let vectors = store.embeddings(model).collect::<Result<Vec<_>, _>>()?;
    let built;
    let graph = match graph {
        Some(g) => g,
        None => {
            built = AnnIndex::build(&vectors, AnnParams::default());
            &built
        }
    };
    let mut parent: BTreeMap<ImageId, ImageId> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<ImageId, ImageId>, x: ImageId) -> ImageId {
        let p = *parent.get(&x).unwrap_or(&x);
        if p == x {
            return x;
        }
        let root = find(parent, p);
        parent.insert(x, root);
        root
    }
    for (id, e) in &vectors {
        for hit in graph.search(e.as_slice(), NEIGHBOURS, 64, &|_| true) {
            if hit.id != *id && hit.score >= threshold {
                let (a, b) = (find(&mut parent, *id), find(&mut parent, hit.id));
                if a != b {
                    parent.insert(a.max(b), a.min(b));
                }
            }
        }
    }
    let mut by_root: BTreeMap<ImageId, Vec<ImageId>> = BTreeMap::new();
    for (id, _) in &vectors {
        let root = find(&mut parent, *id);
        by_root.entry(root).or_default().push(*id);
    }
    let mut out: Vec<Vec<ImageId>> = by_root.into_values().filter(|g| g.len() > 1).collect();
    for g in &mut out {
        g.sort_unstable();
    }
    out.sort();
    Ok(out)
}
