//! What requests carry besides the query: paging, the texts' language and the matrix body, with their OpenAPI
//! schemas and the range checks that answer 400.

use clipsight_indexer::clip::Language;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::search::Sort;
use super::json::WholeNumber;

/// Body of `POST /api/matrix`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixRequest {
    /// Indexed image ids (rows).
    #[schema(value_type = Vec<u64>, min_items = 1, max_items = 256)]
    pub images: Vec<WholeNumber>,
    /// Texts (columns).
    #[schema(min_items = 1, max_items = 256)]
    pub texts: Vec<String>,
}

/// Paging parameters shared by result lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Results to return (1–1000, default 20).
    #[param(minimum = 1, maximum = 1000)]
    pub k: Option<usize>,
    /// Results to skip (at most 100000).
    #[param(maximum = 100000)]
    pub offset: Option<usize>,
}

impl Page {
    /// The most results one request may ask for.
    pub const MAX_K: usize = 1000;

    /// `(k, offset)` with defaults, or an error for out-of-range values.
    pub fn resolve(&self) -> Result<(usize, usize), ApiError> {
        let k = self.k.unwrap_or(20);
        if k == 0 || k > Self::MAX_K {
            return Err(ApiError::bad_request("bad_parameter", format!("k must be between 1 and {}", Self::MAX_K)));
        }
        let offset = self.offset.unwrap_or(0);
        if offset > 100_000 {
            return Err(ApiError::bad_request("bad_parameter", "offset must be at most 100000"));
        }
        Ok((k, offset))
    }
}

/// A `lang` parameter's language (see [`crate::library::language`]).
pub fn language(lang: Option<&str>) -> Result<Option<Language>, ApiError> {
    match lang {
        Some(tag) if tag.chars().count() > 64 => Err(ApiError::bad_request("bad_parameter", "lang is at most 64 characters")),
        Some(tag) => Ok(Some(crate::library::language(tag))),
        None => Ok(None),
    }
}

/// `sort`: how relevant results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    /// Best first (the default).
    Score,
    /// By capture date (`order`: newest first by default); results without a date follow.
    Date,
}

/// `order`: the direction of a date order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Newest first (the default).
    Newest,
    /// Oldest first.
    Oldest,
}

/// The library's order of relevant results from `sort` and `order` (`order` counts only with
/// `sort=date`).
pub fn sort(sort: Option<SortKey>, order: Option<DateOrder>) -> Sort {
    match (sort.unwrap_or(SortKey::Score), order) {
        (SortKey::Score, _) => Sort::Score,
        (SortKey::Date, None | Some(DateOrder::Newest)) => Sort::Newest,
        (SortKey::Date, Some(DateOrder::Oldest)) => Sort::Oldest,
    }
}
