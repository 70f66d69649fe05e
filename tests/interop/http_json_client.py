"""A script's view of the sidecar's HTTP/JSON routes, with the standard library only (urllib), as a QuPath
Groovy script or a shell would use them. Usage: http_json_client.py BASE_URL SLIDE [TOKEN]

Reads the slide's info, runs AnalyzeSlide (POST /v1/analyses, one JSON object per line), then fetches the
GeoJSON and CSV exports; prints one JSON object with what it saw for the C# test to check.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

base, slide = sys.argv[1], sys.argv[2]
token = sys.argv[3] if len(sys.argv) > 3 else None


def request(method, path, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    return urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers, method=method), timeout=120)


out = {}
try:
    with request("GET", "/v1/slides/info?" + urllib.parse.urlencode({"path": slide})) as r:
        info = json.load(r)
except urllib.error.HTTPError as e:
    print(json.dumps({"info_error": {"http": e.code, "body": json.loads(e.read() or b"{}")}}))
    sys.exit(0)
out["width"], out["height"], out["mpp_x"] = info["width"], info["height"], info["resolution"]["mppX"]

progress_events, result = 0, None
with request("POST", "/v1/analyses", {"path": slide}) as r:
    for line in r:  # server streaming: one message per line
        if not line.strip():
            continue
        message = json.loads(line)
        if "progress" in message:
            progress_events += 1
        if "result" in message:
            result = message["result"]
out["progress_events"] = progress_events
out["tile_count"] = result["header"]["tileCount"]
out["key"] = result["header"]["key"]
out["predicted_class_name"] = result["predictedClassName"]
out["probabilities"] = result["probabilities"]

with request("GET", f"/v1/analyses/{out['key']}/export?format=geojson") as r:
    out["geojson_type"] = r.headers["content-type"]
    out["geojson_features"] = len(json.load(r)["features"])
with request("GET", f"/v1/analyses/{out['key']}/export?format=csv") as r:
    out["csv_type"] = r.headers["content-type"]
    out["csv_rows"] = len(r.read().decode().strip().splitlines()) - 1
try:
    request("GET", f"/v1/analyses/{out['key']}/export?format=bmp")
except urllib.error.HTTPError as e:
    out["bad_format"] = {"http": e.code, "body": json.loads(e.read())}
print(json.dumps(out))
