using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Broker.Core.Audit;

/// <summary>One record as read back: the parsed event and the exact line that was written.</summary>
public sealed record AuditLine(AuditEvent Event, string Json);

/// <summary>
/// Reads audit records from folders and/or segment files, and keeps reading: each
/// <see cref="ReadNew"/> returns only the complete records written since the last call
/// (new segments in a folder are picked up). A last line without its newline is a record still
/// being written, or torn by a crash, and is left for a later call. Reading is not verifying:
/// damaged records are skipped here and named by <see cref="AuditVerifier"/>.
/// </summary>
public sealed class AuditReader
{
    private readonly string[] _paths;
    private readonly Dictionary<string, long> _offsets = new(StringComparer.Ordinal);

    /// <exception cref="FileNotFoundException">A path is neither a folder nor a file.</exception>
    public AuditReader(IEnumerable<string> paths)
    {
        _paths = paths.ToArray();
        foreach (var path in _paths)
        {
            if (!System.IO.Directory.Exists(path) && !File.Exists(path))
            {
                throw new FileNotFoundException($"'{path}' does not exist.", path);
            }
        }
    }

    /// <summary>Every complete record in <paramref name="paths"/>, in file order.</summary>
    public static List<AuditLine> ReadAll(IEnumerable<string> paths) => new AuditReader(paths).ReadNew();

    /// <summary>The complete records written since the previous call (all of them on the first).</summary>
    public List<AuditLine> ReadNew()
    {
        var records = new List<AuditLine>();
        foreach (var path in _paths)
        {
            IEnumerable<string> segments = System.IO.Directory.Exists(path)
                ? AuditFiles.All(path).Select(s => s.Path)
                : File.Exists(path) ? [path] : [];
            foreach (var segment in segments)
            {
                ReadSegment(segment, records);
            }
        }

        return records;
    }

    private void ReadSegment(string segment, List<AuditLine> records)
    {
        var offset = _offsets.GetValueOrDefault(segment);
        byte[] bytes;
        try
        {
            using var stream = new FileStream(segment, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length <= offset)
            {
                return;
            }

            stream.Position = offset;
            bytes = new byte[stream.Length - offset];
            stream.ReadExactly(bytes);
        }
        catch (FileNotFoundException)
        {
            return;
        }

        var span = bytes.AsSpan();
        var consumed = 0;
        while (consumed < span.Length)
        {
            var end = span[consumed..].IndexOf((byte)'\n');
            if (end < 0)
            {
                break; // a record still being written, or torn by a crash
            }

            var line = span.Slice(consumed, end);
            consumed += end + 1;
            try
            {
                if (JsonSerializer.Deserialize(line, AuditJsonContext.Default.AuditEvent) is { } auditEvent)
                {
                    records.Add(new AuditLine(auditEvent, Encoding.UTF8.GetString(line)));
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                // Reading is not verifying: 'audit verify' names damaged records.
            }
        }

        _offsets[segment] = offset + consumed;
    }
}

/// <summary>
/// Which records a query wants; every filter that is set must match (AND). <see cref="Agent"/>,
/// <see cref="Task"/> and <see cref="TokenId"/> also match a revocation whose selector names them.
/// <see cref="Type"/> is a type name (<c>credential.issued</c>) or id (<c>2000</c>); a band
/// prefix like <c>approval.</c> or one digit like <c>5</c> matches the band.
/// </summary>
public sealed record AuditFilter(string? Agent, string? Task, string? TokenId, string? Actor, string? Type, DateTimeOffset? Since, DateTimeOffset? Until)
{
    public bool Matches(AuditEvent e) =>
        (Agent is null || e.Subject == Agent || e.Actor == Agent || (e.Selector?.Contains(Agent, StringComparison.Ordinal) ?? false))
        && (Task is null || e.TaskId == Task || (e.Selector?.Contains(Task, StringComparison.Ordinal) ?? false))
        && (TokenId is null || e.TokenId == TokenId || (e.Selector?.Contains(TokenId, StringComparison.Ordinal) ?? false))
        && (Actor is null || e.Actor == Actor)
        && (Type is null || TypeMatches(e))
        && (Since is null || e.Time >= Since)
        && (Until is null || e.Time < Until);

    /// <summary>The newest <paramref name="limit"/> matching records, oldest first, in <see cref="AuditOrder"/>.</summary>
    public List<AuditLine> Apply(IEnumerable<AuditLine> records, int limit) =>
        AuditOrder.Interleave(records.Where(r => Matches(r.Event))).TakeLast(Math.Max(0, limit)).ToList();

    /// <summary>The newest <paramref name="count"/> records, oldest first: each node's in seq order, nodes interleaved by time (<see cref="AuditOrder"/>).</summary>
    public static List<AuditLine> Newest(IEnumerable<AuditLine> records, int count) =>
        AuditOrder.Interleave(records).TakeLast(Math.Max(0, count)).ToList();

    private bool TypeMatches(AuditEvent e)
    {
        var id = e.EventId.ToString(CultureInfo.InvariantCulture);
        return e.Type == Type || id == Type
            || (Type!.EndsWith('.') && e.Type.StartsWith(Type, StringComparison.Ordinal))
            || (Type.Length == 1 && char.IsAsciiDigit(Type[0]) && id.StartsWith(Type, StringComparison.Ordinal));
    }
}
