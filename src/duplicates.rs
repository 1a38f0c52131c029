//! Near-duplicate groups: images whose embeddings are at least `threshold` similar, found by
//! asking a vector index for each image's nearest neighbours (in batches) and joining the pairs.

use std::collections::BTreeMap;

use clipsight_indexer::ModelId;

use crate::ann::{AnnError, IndexKind, VectorIndex};
use crate::filters::Filters;
use crate::store::{ImageId, Store};

/// Neighbours examined per image.
const NEIGHBOURS: usize = 16;

/// Images asked about per call to the index.
const BATCH: usize = 256;

/// Groups (each sorted by id, at least two images) of near-duplicates, ordered by first id.
/// Uses `index` when it is a graph; an exact index would compare every pair, so a graph of the
/// library is built in memory instead.
pub fn groups(store: &Store, model: ModelId, threshold: f32, index: &dyn VectorIndex) -> Result<Vec<Vec<ImageId>>, AnnError> {
    let vectors = store.embeddings(model).collect::<Result<Vec<_>, _>>()?;
    let built;
    let index = match index.kind() {
        IndexKind::Graph => index,
        IndexKind::Exact | IndexKind::Sketch => {
            built = crate::ann::graph_of(store, &vectors);
            built.as_ref()
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
    for chunk in vectors.chunks(BATCH) {
        let queries: Vec<&[f32]> = chunk.iter().map(|(_, e)| e.as_slice()).collect();
        for ((id, _), hits) in chunk.iter().zip(index.search(&queries, NEIGHBOURS, &Filters::default())?) {
            for hit in hits {
                if hit.id != *id && hit.score >= threshold {
                    let (a, b) = (find(&mut parent, *id), find(&mut parent, hit.id));
                    if a != b {
                        parent.insert(a.max(b), a.min(b));
                    }
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
