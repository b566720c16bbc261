using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace Broker.Server.OAuth;

/// <summary>
/// The form body of an OAuth endpoint, read with hard limits: form-encoded only, at most
/// 64 KiB, and no parameter twice except those the specifications let repeat (RFC 6749 3.2).
/// </summary>
internal sealed class TokenForm
{
    public const int MaxBytes = Hosting.BrokerServerExtensions.MaxRequestBytes;

    private static readonly HashSet<string> Repeatable = new(StringComparer.Ordinal) { "resource", "audience" };

    private readonly IFormCollection _form;

    private TokenForm(IFormCollection form) => _form = form;

    public static async Task<TokenForm> ReadAsync(HttpContext context)
    {
        var request = context.Request;
        if (!request.HasFormContentType || !string.Equals(request.ContentType?.Split(';')[0].Trim(), "application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            throw Malformed("The body must be application/x-www-form-urlencoded.");
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBytes;
        }

        IFormCollection form;
        try
        {
            form = await request.ReadFormAsync(new FormOptions { ValueCountLimit = 64, ValueLengthLimit = MaxBytes, KeyLengthLimit = 64 }, context.RequestAborted);
        }
        catch (Exception ex) when (ex is BadHttpRequestException or InvalidDataException or IOException)
        {
            throw Malformed($"The body is not a valid form of at most {MaxBytes / 1024} KiB.");
        }

        foreach (var (key, values) in form)
        {
            if (values.Count > 1 && !Repeatable.Contains(key))
            {
                throw Malformed($"Parameter '{Shorten(key)}' appears more than once.");
            }
        }

        return new TokenForm(form);
    }

    /// <summary>The parameter's value; empty counts as absent (RFC 6749 section 3.1).</summary>
    public string? this[string name] => _form.TryGetValue(name, out var values) && !StringValues.IsNullOrEmpty(values) && values[0] is { Length: > 0 } value ? value : null;

    public IEnumerable<string> All(string name) =>
        _form.TryGetValue(name, out var values) ? values.Where(v => !string.IsNullOrEmpty(v)).Select(v => v!) : [];

    private static OAuthRequestException Malformed(string message) =>
        new(OAuthProtocol.InvalidRequest, OAuthReasons.RequestMalformed, message);

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..61] + "...";
}
