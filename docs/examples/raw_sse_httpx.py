"""Read a job's SSE stream with plain httpx, resuming with Last-Event-ID."""

import json
import os

import httpx

URL = os.environ.get("AURA_URL", "http://127.0.0.1:8000")

job = httpx.post(f"{URL}/api/jobs", json={"pipeline": "synthetic", "params": {"ticks": 5}})
job_id = job.json()["id"]

last_id = None
done = False
while not done:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    with httpx.stream("GET", f"{URL}/api/jobs/{job_id}/events", headers=headers) as response:
        if response.status_code == 204:  # the job already ended: nothing more to say
            break
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":  # a blank line ends an event
                if "data" in fields:
                    last_id = fields.get("id", last_id)
                    data = json.loads(fields["data"])
                    print(last_id, fields.get("event"), data.get("progressPct", ""))
                    done = fields.get("event") in {"job-completed", "job-failed", "job-cancelled"}
                fields = {}
            elif not line.startswith(":"):  # ':' starts a comment (keep-alive)
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
