"""Read back the data of tempodb-write-demo.py: hourly means for the first day, and the
summary of all ten days.

Set TEMPODB_KEY and TEMPODB_SECRET (and TEMPODB_HOST, TEMPODB_PORT, TEMPODB_SECURE for your
own server), or edit the placeholders below.
"""

import datetime
import os

from tempodb import Client

# Host, port and secure come from TEMPODB_HOST, TEMPODB_PORT and TEMPODB_SECURE: without a host
# nothing is sent (the hosted service is gone).
client = Client(
    os.environ.get("TEMPODB_KEY", "your-api-key"),
    os.environ.get("TEMPODB_SECRET", "your-api-secret"),
)

start = datetime.date(2012, 1, 1)
end = start + datetime.timedelta(days=1)

data = client.read_key("your-custom-key", start, end, interval="1hour", function="mean")

print(f"Hourly means of {data.series.key} on {start}:")
for datapoint in data.data:
    print(f"  {datapoint.ts:%Y-%m-%d %H:%M %Z}  {datapoint.value:8.3f}")

everything = client.read_key("your-custom-key", start, start + datetime.timedelta(days=10))
summary = everything.summary
print(f"\nSummary of {everything.start:%Y-%m-%d} to {everything.end:%Y-%m-%d}:")
print(f"   count: {summary.count:,}")
for name in ("sum", "mean", "min", "max", "stddev"):
    print(f"  {name:>6}: {getattr(summary, name):,.3f}")
