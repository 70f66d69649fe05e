/*
 * QuPath script: analyse the open slide on a SlidePlugin sidecar and add the scored tiles as detections.
 * Uses only java.net.http and QuPath's own classes: no extension to install.
 *
 * The sidecar runs with its HTTP endpoint and the slide's folder as a root, e.g.
 *     slideplugin serve --web-listen 127.0.0.1:50052 --slide-root /data/slides
 * Set SLIDEPLUGIN_WEB (default http://127.0.0.1:50052) and, when the server has one, SLIDEPLUGIN_TOKEN.
 * Each detection carries the tile's attention, its attention percentile and the class probabilities as
 * measurements (Measure > Show measurement maps colours them).
 */
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Paths
import qupath.lib.io.PathIO

def base = System.getenv('SLIDEPLUGIN_WEB') ?: 'http://127.0.0.1:50052'
def token = System.getenv('SLIDEPLUGIN_TOKEN')
def slidePath = Paths.get(getCurrentServer().getURIs()[0]).toString()
def http = HttpClient.newHttpClient()

def request = { String path ->
    def builder = HttpRequest.newBuilder(URI.create(base + path))
    if (token) builder.header('authorization', 'Bearer ' + token)
    builder
}
def fail = { int status, String body, String what ->
    // Errors come as {"code": <gRPC status>, "message": "..."}: the message names the problem.
    throw new RuntimeException("SlidePlugin: ${what} failed with HTTP ${status}: ${body}")
}

// POST /v1/analyses streams one JSON object per line: a header, progress events, the tiles, the result.
def analyze = request('/v1/analyses')
        .header('content-type', 'application/json')
        .POST(HttpRequest.BodyPublishers.ofString(JsonOutput.toJson([path: slidePath])))
        .build()
def lines = http.send(analyze, HttpResponse.BodyHandlers.ofLines())
if (lines.statusCode() != 200) fail(lines.statusCode(), lines.body().collect().join('\n'), 'AnalyzeSlide')
def result = null
def slurper = new JsonSlurper()
lines.body().each { line ->
    if (!line.trim()) return
    def message = slurper.parseText(line)
    if (message.progress) println "SlidePlugin: ${message.progress.tilesDone} / ${message.progress.tileCount} tiles"
    if (message.result) result = message.result
}
if (result == null) throw new RuntimeException('SlidePlugin: the analysis ended without a result')
println "SlidePlugin: ${result.predictedClassName} (${[result.header.classes, result.probabilities].transpose().collect { c, p -> "$c ${String.format('%.3f', p as double)}" }.join(', ')})"

// The export is QuPath GeoJSON in QuPath's frame (already shifted by openslide.bounds-x/y).
def export = request("/v1/analyses/${result.header.key}/export?format=geojson").GET().build()
def file = Files.createTempFile('slideplugin-', '.geojson')
def response = http.send(export, HttpResponse.BodyHandlers.ofFile(file))
if (response.statusCode() != 200) fail(response.statusCode(), Files.readString(file), 'export')
def objects = PathIO.readObjects(file)
Files.delete(file)
addObjects(objects)
println "SlidePlugin: added ${objects.size()} tiles"
