//! Three-way merge of JSON documents, used by the `merge` draft strategy.
