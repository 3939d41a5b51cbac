"""The Prometheus dialect: remote_write in (``write``), remote_read out (``read``), onto the
same write batches and store reads as the v1 routes.  ``messages`` builds the protobuf
messages and frames them in snappy, ``labels`` maps label sets to our series.  Nothing outside
this package depends on it but the route table (docs/prometheus.md)."""
