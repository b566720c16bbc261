using System.Diagnostics.CodeAnalysis;

namespace Broker.Core.Attestation;

/// <summary>
/// A SPIFFE ID naming a workload: <c>spiffe://trust-domain/path</c>, parsed strictly per the
/// SPIFFE ID specification. Anything a lenient URI parser would normalise (case, percent
/// escapes, dot segments, ports) is refused instead, so two spellings can never name one
/// workload and policy patterns match exactly what the issuer signed.
/// </summary>
public sealed class SpiffeId : IEquatable<SpiffeId>
{
    /// <summary>Longest accepted SPIFFE ID (the spec's URI limit).</summary>
    public const int MaxLength = 2048;

    /// <summary>Longest accepted trust domain name (a DNS name's limit).</summary>
    public const int MaxTrustDomainLength = 255;

    private const string Prefix = "spiffe://";

    private SpiffeId(string trustDomain, string path)
    {
        TrustDomain = trustDomain;
        Path = path;
    }

    /// <summary>The trust domain name, e.g. <c>example.org</c>.</summary>
    public string TrustDomain { get; }

    /// <summary>The path, starting with <c>/</c>, e.g. <c>/agents/planner</c>. Never empty.</summary>
    public string Path { get; }

    /// <summary>Parses a workload SPIFFE ID (a non-empty path is required).</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out SpiffeId? id) =>
        TryParse(text, out id, out _);

    /// <summary>Parses a workload SPIFFE ID; <paramref name="error"/> says what is wrong (safe to show: it echoes nothing).</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out SpiffeId? id, [NotNullWhen(false)] out string? error)
    {
        id = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "SPIFFE ID is empty";
            return false;
        }

        if (text.Length > MaxLength)
        {
            error = $"SPIFFE ID is longer than {MaxLength} characters";
            return false;
        }

        // Ordinal: the scheme must be exactly lower-case "spiffe"; "SPIFFE://" is refused.
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = "SPIFFE ID must start with 'spiffe://'";
            return false;
        }

        var rest = text.AsSpan(Prefix.Length);
        var slash = rest.IndexOf('/');
        var trustDomain = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? ReadOnlySpan<char>.Empty : rest[slash..];

        if (!IsValidTrustDomain(trustDomain, out error))
        {
            return false;
        }

        if (path.IsEmpty)
        {
            error = "SPIFFE ID has no path; a workload ID needs one";
            return false;
        }

        if (!IsValidPath(path, out error))
        {
            return false;
        }

        id = new SpiffeId(trustDomain.ToString(), path.ToString());
        return true;
    }

    /// <summary>True when <paramref name="name"/> is a valid trust domain name (lower case letters, digits, '.', '-', '_').</summary>
    public static bool IsValidTrustDomain(string? name) => name is not null && IsValidTrustDomain(name, out _);

    private static bool IsValidTrustDomain(ReadOnlySpan<char> name, [NotNullWhen(false)] out string? error)
    {
        if (name.IsEmpty)
        {
            error = "SPIFFE ID has an empty trust domain";
            return false;
        }

        if (name.Length > MaxTrustDomainLength)
        {
            error = $"trust domain is longer than {MaxTrustDomainLength} characters";
            return false;
        }

        foreach (var c in name)
        {
            // ':' (port), '@' (userinfo), '?', '#', '%' and upper case all land here.
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '-' or '_'))
            {
                error = "trust domain may only contain lower-case letters, digits, '.', '-' and '_' (no port, user info, query or fragment)";
                return false;
            }
        }

        error = null;
        return true;
    }

    private static bool IsValidPath(ReadOnlySpan<char> path, [NotNullWhen(false)] out string? error)
    {
        // path = 1*( "/" segment ), segment = 1*( ALPHA / DIGIT / "." / "-" / "_" ), no "." or "..".
        var i = 0;
        while (i < path.Length)
        {
            // path[i] is always '/': the first char by construction, later ones by the loop below.
            var start = i + 1;
            var end = start;
            while (end < path.Length && path[end] != '/')
            {
                var c = path[end];
                if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '-' or '_'))
                {
                    error = "SPIFFE ID path may only contain letters, digits, '.', '-' and '_' (no query, fragment or percent escapes)";
                    return false;
                }

                end++;
            }

            var segment = path[start..end];
            if (segment.IsEmpty)
            {
                error = "SPIFFE ID path has an empty segment";
                return false;
            }

            if (segment is "." or "..")
            {
                error = "SPIFFE ID path may not contain '.' or '..' segments";
                return false;
            }

            i = end;
        }

        error = null;
        return true;
    }

    public bool Equals(SpiffeId? other) =>
        other is not null && string.Equals(TrustDomain, other.TrustDomain, StringComparison.Ordinal) && string.Equals(Path, other.Path, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as SpiffeId);

    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(TrustDomain), StringComparer.Ordinal.GetHashCode(Path));

    public override string ToString() => Prefix + TrustDomain + Path;
}
