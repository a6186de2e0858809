//! Seeded generator of the synthetic multi-domain sample data.
