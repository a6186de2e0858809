//! Ranking metrics, TREC run/qrels files and paired significance tests.
