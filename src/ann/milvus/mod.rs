//! A library's vectors in Milvus, a distributed vector database, instead of the local graph:
//! chosen with `--store milvus://HOST:PORT/COLLECTION`.
//!
//! ```text
//! indexer (its own RocksDB: records, embeddings, progress)
//!    └─ push: rows that changed since the last push ──► COLLECTION__<model id>  (one per model)
//!                                                        id · vector · origin · path · folders ·
//! search ─ query vectors + filters as an expression ──►  day · taken · camera · formats · kind ·
//!    ◄── row keys, scores (+ fields for what the           gps · lat · lon
//!        expression cannot say) ──────────────────────
//! ```
//! The indexer's store stays the source of truth: a push compares it with what it recorded as
//! sent ([`crate::store::RemoteRow`]) and sends only the difference, so an interrupted push, a
//! crash or a Milvus outage is repaired by the next one. A row's key is a hash of the file's
//! path, so a file seen twice (two indexers, one path) is one row and a moved file replaces its
//! row. Every remote call has a timeout; writes retry with backoff for minutes, reads for
//! seconds and then fail as [`super::AnnError::Unavailable`] (a 503 from the server).

pub mod bench;
mod client;
mod expr;
mod index;
mod pull;
mod rows;
mod sync;

pub use client::{Collection, Freshness, Milvus, MilvusError, Part, Patience};
pub use index::{push_library, MilvusIndex, MilvusWriter};
pub use pull::{pull, Depth, PullSummary};
pub use rows::row_key;
pub use sync::{push, verify, Copied, PushSummary, Verification};

/// Where a `milvus://HOST:PORT/COLLECTION` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusAddress {
    /// Host name or address of the server (its proxy, in a cluster).
    pub host: String,
    /// gRPC port (Milvus's default is 19530).
    pub port: u16,
    /// The collection's base name; each model's vectors go to `COLLECTION__<model id>`.
    pub collection: String,
}

impl std::str::FromStr for MilvusAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("{s:?} is not milvus://HOST:PORT/COLLECTION");
        let rest = s.strip_prefix("milvus://").ok_or_else(usage)?;
        let (authority, collection) = rest.split_once('/').ok_or_else(usage)?;
        let (host, port) = authority.rsplit_once(':').map_or((authority, Some(19530)), |(h, p)| (h, p.parse().ok()));
        let port = port.ok_or_else(usage)?;
        let valid = collection.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && collection.len() <= 200
            && collection.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if host.is_empty() || !valid {
            return Err(format!("{}; a collection name is letters, digits and underscores, starting with a letter or an underscore", usage()));
        }
        Ok(Self { host: host.to_string(), port, collection: collection.to_string() })
    }
}

impl std::fmt::Display for MilvusAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "milvus://{}:{}/{}", self.host, self.port, self.collection)
    }
}

impl std::fmt::Debug for VectorHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local => f.write_str("Local"),
            Self::Milvus(m) => write!(f, "Milvus({})", m.address()),
        }
    }
}

/// Where a library's vectors are searched: its own derived indexes (the default), or a Milvus
/// collection.
#[derive(Clone, Default)]
pub enum VectorHome {
    /// The local graph, flat copy or store scan.
    #[default]
    Local,
    /// A Milvus server.
    Milvus(std::sync::Arc<Milvus>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_a_host_a_port_and_a_collection() {
        let a: MilvusAddress = "milvus://db.example:19531/photos_2".parse().unwrap();
        assert_eq!(a, MilvusAddress { host: "db.example".into(), port: 19531, collection: "photos_2".into() });
        assert_eq!(a.to_string(), "milvus://db.example:19531/photos_2");
        assert_eq!("milvus://db/photos".parse::<MilvusAddress>().unwrap().port, 19530, "the default port");
        for bad in ["db:19530/photos", "milvus://db:port/photos", "milvus://db:19530/", "milvus://db:19530/1photos", "milvus://db:19530/pho-tos", "milvus://:19530/photos"] {
            assert!(bad.parse::<MilvusAddress>().is_err(), "{bad}");
        }
    }
}
