namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// A stream-management or poll request refused: the HTTP status and the <c>err</c> code the
/// answer carries (RFC 8935 section 2.4 / RFC 8936 section 2.4.4 error codes, plus
/// <c>not_found</c> and <c>conflict</c> for SSF 1.0 section 7.1 stream management).
/// </summary>
public sealed class SsfTransmitterException(int status, string err, string description) : Exception(description)
{
    public int Status { get; } = status;

    public string Err { get; } = err;

    public static SsfTransmitterException BadRequest(string description) => new(400, "invalid_request", description);

    /// <summary>Unknown streams and other receivers' streams look the same: a receiver learns nothing of streams it does not own.</summary>
    public static SsfTransmitterException NotFound(string streamId) => new(404, "not_found", $"No stream '{streamId}' for this receiver.");

    public static SsfTransmitterException Conflict(string description) => new(409, "conflict", description);

    public static SsfTransmitterException Unavailable(string description) => new(503, "temporarily_unavailable", description);
}
