using System.Collections.Frozen;
using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.StaticFiles;

namespace SlidePlugin.Sidecar.Hosting;

/// <summary>
/// The browser viewer: files of viewer/ (the page, its scripts, OpenSeadragon and its licence) embedded in this
/// assembly at build time (resources named <c>viewer/PATH</c>), served at <c>/</c> and <c>/viewer/PATH</c> on the
/// --web-listen endpoint only; the gRPC endpoint answers them 404. No token is asked for the files: the page asks
/// the user for it and sends it with its calls, which the token guards as every call.
/// </summary>
internal static class ViewerFiles
{
    /// <summary>The prefix of the embedded resources' names, and of the files' URLs.</summary>
    public const string Prefix = "viewer/";

    private const string WebConnectionKey = "slideplugin.web-connection";

    private static readonly Assembly Assembly = typeof(ViewerFiles).Assembly;

    // The assembly's identity changes with every build, and the files with it: a fine ETag.
    private static readonly string ETag = $"\"{Assembly.ManifestModule.ModuleVersionId:N}\"";

    private static readonly FileExtensionContentTypeProvider MediaTypes = new();

    /// <summary>Every embedded file: its path under viewer/ and its resource name.</summary>
    public static FrozenDictionary<string, string> Files { get; } = Assembly.GetManifestResourceNames()
        .Where(name => name.StartsWith(Prefix, StringComparison.Ordinal))
        .ToFrozenDictionary(name => name[Prefix.Length..], StringComparer.Ordinal);

    /// <summary>Marks connections of the web endpoint (a Kestrel connection middleware), so the files are served there only.</summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> MarkWebConnections => next => connection =>
    {
        connection.Items[WebConnectionKey] = true;
        return next(connection);
    };

    /// <summary>Maps GET / (the page) and GET /viewer/{**path}.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", context => ServeAsync(context, "index.html"));
        app.MapGet("/" + Prefix + "{**path}", context => ServeAsync(context, (string?)context.Request.RouteValues["path"] ?? string.Empty));
    }

    private static async Task ServeAsync(HttpContext context, string path)
    {
        bool web = context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(WebConnectionKey) == true;
        if (!web || !Files.TryGetValue(path, out string? resource))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        context.Response.Headers.ETag = ETag;
        context.Response.Headers.CacheControl = "no-cache"; // revalidate: a new build serves new files under the same names
        context.Response.Headers.XContentTypeOptions = "nosniff";
        if (context.Request.Headers.IfNoneMatch == ETag)
        {
            context.Response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }

        context.Response.ContentType = MediaTypes.TryGetContentType(path, out string? type) ? type : "application/octet-stream";
        await using Stream stream = Assembly.GetManifestResourceStream(resource)!;
        context.Response.ContentLength = stream.Length;
        await stream.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }
}
