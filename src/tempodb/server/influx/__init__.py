"""The InfluxDB dialect: line protocol in (``write``), onto the same write batches as the v1
routes.  ``parse`` reads the grammar, ``names`` maps InfluxDB's names to our series, ``write``
answers ``/write``, ``/api/v2/write`` and ``/ping`` as InfluxDB does.  Nothing outside this
package depends on it but the route table."""
