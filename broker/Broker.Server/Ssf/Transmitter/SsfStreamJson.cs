using System.Text.Json;
using Broker.Core.Ssf.Transmitter;

namespace Broker.Server.Ssf.Transmitter;

/// <summary>
/// The stream configuration as SSF 1.0 section 7.1.1 spells it. Reading takes only the
/// receiver-supplied members (<c>delivery</c>, <c>events_requested</c>, <c>description</c>);
/// transmitter-supplied ones a receiver sends back (<c>stream_id</c> aside) are ignored, as the
/// spec allows. The push <c>authorization_header</c> is stored, never written back.
/// </summary>
internal static class SsfStreamJson
{
    private const int MaxUrlLength = 2048;
    private const int MaxHeaderLength = 4096;
    private const int MaxDescriptionLength = 256;
    private const int MaxEvents = 32;

    /// <summary>A create (or PUT) body: every receiver-supplied member, with the defaults for absent ones (poll; every supported event).</summary>
    public static SsfStreamRequest Read(JsonElement body, bool allowLoopbackHttp) => Merge(body, null, allowLoopbackHttp);

    /// <summary>
    /// A PATCH body over <paramref name="current"/>: members present replace, absent ones stay.
    /// With <paramref name="current"/> null, absent members take their defaults.
    /// </summary>
    public static SsfStreamRequest Merge(JsonElement body, SsfStream? current, bool allowLoopbackHttp)
    {
        var method = current?.Method ?? SsfDelivery.Poll;
        var endpoint = current?.EndpointUrl;
        var authorization = current?.AuthorizationHeader;
        if (body.TryGetProperty("delivery", out var delivery))
        {
            if (delivery.ValueKind != JsonValueKind.Object)
            {
                throw SsfTransmitterException.BadRequest("delivery must be an object.");
            }

            method = String(delivery, "method", 64) ?? method;
            endpoint = String(delivery, "endpoint_url", MaxUrlLength);
            authorization = String(delivery, "authorization_header", MaxHeaderLength) ?? (delivery.TryGetProperty("endpoint_url", out _) ? null : authorization);
        }

        if (!SsfDelivery.Supported.Contains(method))
        {
            throw SsfTransmitterException.BadRequest($"delivery.method must be one of {string.Join(", ", SsfDelivery.Supported)}.");
        }

        if (method == SsfDelivery.Poll)
        {
            // RFC 8936: the transmitter names the poll URL; a receiver-chosen one would mean nothing.
            if (endpoint is not null && current?.Method != SsfDelivery.Poll)
            {
                throw SsfTransmitterException.BadRequest("delivery.endpoint_url is supplied by Broker for poll delivery; leave it out.");
            }

            endpoint = null;
            authorization = null;
        }
        else
        {
            CheckPushEndpoint(endpoint, allowLoopbackHttp);
            if (authorization is not null && authorization.Any(c => c is < ' ' or > '~'))
            {
                throw SsfTransmitterException.BadRequest("delivery.authorization_header must be printable ASCII.");
            }
        }

        var events = current?.EventsRequested ?? SsfEventTypes.Supported;
        if (body.TryGetProperty("events_requested", out var requested))
        {
            if (requested.ValueKind != JsonValueKind.Array || requested.GetArrayLength() > MaxEvents || requested.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || e.GetString()!.Length is 0 or > 256))
            {
                throw SsfTransmitterException.BadRequest($"events_requested must be an array of at most {MaxEvents} event-type URIs.");
            }

            events = [.. requested.EnumerateArray().Select(e => e.GetString()!).Distinct(StringComparer.Ordinal)];
        }

        var description = current?.Description;
        if (body.TryGetProperty("description", out _))
        {
            description = String(body, "description", MaxDescriptionLength);
        }

        return new SsfStreamRequest(method, endpoint, authorization, events, description);
    }

    /// <summary>The <c>stream_id</c> member of a PATCH, PUT or verification body.</summary>
    public static string StreamId(JsonElement body) =>
        String(body, "stream_id", 64) ?? throw SsfTransmitterException.BadRequest("stream_id is required.");

    public static void Write(Utf8JsonWriter w, SsfStream stream, string issuer)
    {
        w.WriteStartObject();
        w.WriteString("stream_id", stream.Id);
        w.WriteString("iss", issuer);
        w.WriteString("aud", stream.Audience);
        WriteArray(w, "events_supported", SsfEventTypes.Supported);
        WriteArray(w, "events_requested", stream.EventsRequested);
        WriteArray(w, "events_delivered", stream.EventsDelivered);
        w.WriteStartObject("delivery");
        w.WriteString("method", stream.Method);
        w.WriteString("endpoint_url", stream.IsPush ? stream.EndpointUrl : SsfTransmitterPaths.Poll(issuer, stream.Id));
        w.WriteEndObject();
        if (stream.Description is not null)
        {
            w.WriteString("description", stream.Description);
        }

        w.WriteEndObject();
    }

    public static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }

        w.WriteEndArray();
    }

    private static void CheckPushEndpoint(string? endpoint, bool allowLoopbackHttp)
    {
        if (endpoint is null || !Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || !string.IsNullOrEmpty(uri.UserInfo) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw SsfTransmitterException.BadRequest("delivery.endpoint_url must be the absolute https:// URL SETs are pushed to (no user info, no fragment).");
        }

        var loopbackHttp = uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback && allowLoopbackHttp;
        if (uri.Scheme != Uri.UriSchemeHttps && !loopbackHttp)
        {
            throw SsfTransmitterException.BadRequest("delivery.endpoint_url must be https:// (http:// only on loopback, Broker:Ssf:Transmitter:AllowLoopbackHttpPush).");
        }
    }

    private static string? String(JsonElement body, string name, int max)
    {
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String || value.GetString()!.Length > max)
        {
            throw SsfTransmitterException.BadRequest($"{name} must be a string of at most {max} characters.");
        }

        return value.GetString();
    }
}
