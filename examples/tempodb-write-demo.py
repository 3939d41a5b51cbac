"""Write 10 days of one-per-minute test data to the series 'your-custom-key'.

Set TEMPODB_KEY and TEMPODB_SECRET (and TEMPODB_HOST, TEMPODB_PORT, TEMPODB_SECURE for your
own server), or edit the placeholders below.
"""

import datetime
import os
import random

from tempodb import Client, DataPoint

# Host, port and secure come from TEMPODB_HOST, TEMPODB_PORT and TEMPODB_SECURE: without a host
# nothing is sent (the hosted service is gone).
client = Client(
    os.environ.get("TEMPODB_KEY", "your-api-key"),
    os.environ.get("TEMPODB_SECRET", "your-api-secret"),
)

date = datetime.datetime(2012, 1, 1)

for _day in range(10):
    # print out the current day we are sending data for
    print(f"writing {date:%Y-%m-%d}")

    data = []
    # 1440 minutes in one day
    for _minute in range(1440):
        data.append(DataPoint(date, random.random() * 50.0))
        date = date + datetime.timedelta(minutes=1)

    client.write_key("your-custom-key", data)

print("wrote 14400 points to your-custom-key")
