using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Broker.Core.Policy.Internal;

namespace Broker.Core.Policy;

/// <summary>
/// Reads a policy file (format in docs/policy.md) into a <see cref="BrokerPolicy"/>, or into
/// every error it has, each with file, line and column. Unknown keys are errors, so a typo
/// never silently weakens policy. The model is built by hand from the YAML tree rather than
/// by reflection, so each value is checked where it was written.
/// </summary>
public static partial class PolicyLoader
{
    public const int SupportedVersion = 1;

    /// <summary>Larger files are refused before parsing.</summary>
    public const int MaxPolicyBytes = 1024 * 1024;

    public const int MaxScopeLength = 128;
    public const int MaxAudienceLength = 256;
    public const int MaxAgentNameLength = 64;

    public static readonly TimeSpan DefaultRefresh = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan MinRefresh = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan MaxRefresh = TimeSpan.FromHours(24);
    public static readonly TimeSpan MinTtl = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan MaxTtl = TimeSpan.FromHours(1);

    private const string SpiffeScheme = "spiffe://";

    /// <summary>Reads and validates the file at <paramref name="path"/>; relative paths inside it resolve against its folder.</summary>
    public static PolicyLoadResult LoadFile(string path)
    {
        string fullPath;
        try
        {
            fullPath = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return Failed(path, $"'{path}' is not a valid file path");
        }

        if (!TryReadFile(fullPath, out var content, out var error))
        {
            return Failed(fullPath, error);
        }

        return Parse(content, fullPath, Path.GetDirectoryName(fullPath) ?? Path.GetPathRoot(fullPath) ?? "/");
    }

    /// <summary>Validates policy text. The digest is over its UTF-8 bytes (no byte order mark).</summary>
    /// <param name="sourceName">Names the policy in errors and in <see cref="BrokerPolicy.Source"/>.</param>
    /// <param name="baseDirectory">Folder that relative file references resolve against.</param>
    public static PolicyLoadResult Parse(string yaml, string sourceName, string baseDirectory) =>
        Parse(Encoding.UTF8.GetBytes(yaml), sourceName, baseDirectory);

    /// <summary>Validates policy bytes (UTF-8, optional byte order mark). The digest is over exactly these bytes.</summary>
    public static PolicyLoadResult Parse(ReadOnlySpan<byte> content, string sourceName, string baseDirectory)
    {
        if (content.Length > MaxPolicyBytes)
        {
            return Failed(sourceName, $"the policy is {content.Length} bytes; the limit is {MaxPolicyBytes}");
        }

        var digest = ComputeDigest(content);
        string text;
        try
        {
            var body = content.StartsWith(Utf8Bom) ? content[Utf8Bom.Length..] : content;
            text = StrictUtf8.GetString(body);
        }
        catch (DecoderFallbackException)
        {
            return Failed(sourceName, "the policy is not valid UTF-8 text");
        }

        var reader = new PolicyReader(sourceName, string.IsNullOrEmpty(baseDirectory) ? Directory.GetCurrentDirectory() : Path.GetFullPath(baseDirectory));
        var root = YamlTreeReader.Read(text, reader.Error);
        var policy = root is null ? null : Build(root, reader, digest, sourceName);
        if (reader.Errors.Count > 0 || policy is null)
        {
            var errors = reader.Errors.OrderBy(e => e.Line).ThenBy(e => e.Column).ToArray();
            return new PolicyLoadResult(null, errors);
        }

        return new PolicyLoadResult(policy, []);
    }

    /// <summary><c>sha256:</c> followed by the lower-case hex SHA-256 of <paramref name="content"/>.</summary>
    public static string ComputeDigest(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>Reads a policy file without blocking writers, refusing oversized files before reading them.</summary>
    internal static bool TryReadFile(string fullPath, out byte[] content, out string error)
    {
        content = [];
        error = "";
        try
        {
            using var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length > MaxPolicyBytes)
            {
                error = $"the policy is {stream.Length} bytes; the limit is {MaxPolicyBytes}";
                return false;
            }

            using var buffer = new MemoryStream((int)stream.Length);
            stream.CopyTo(buffer);
            if (buffer.Length > MaxPolicyBytes)
            {
                error = $"the policy is over {MaxPolicyBytes} bytes";
                return false;
            }

            content = buffer.ToArray();
            return true;
        }
        catch (FileNotFoundException)
        {
            error = "the policy file does not exist";
        }
        catch (DirectoryNotFoundException)
        {
            error = "the policy file's folder does not exist";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error = $"the policy file cannot be read: {ex.Message}";
        }

        return false;
    }

    private static readonly byte[] Utf8Bom = [0xEF, 0xBB, 0xBF];
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static PolicyLoadResult Failed(string file, string message) => new(null, [new PolicyError(file, 1, 1, message)]);

    private static BrokerPolicy? Build(YNode root, PolicyReader reader, string digest, string source)
    {
        var draft = new RootDraft();
        if (!reader.ReadMapping(root, "", RootSchema, draft))
        {
            return null;
        }

        // Trust first, whatever the file order: agent patterns are checked against it.
        var trust = new TrustDraft();
        if (draft.TrustNode is not null)
        {
            ReadTrust(reader, draft.TrustNode, trust);
        }

        var agents = draft.AgentsNode is null ? [] : ReadAgents(reader, draft.AgentsNode, trust);
        var engineNames = new HashSet<string>(StringComparer.Ordinal);
        var secretEngines = draft.SecretEnginesNode is null ? [] : ReadSecretEngines(reader, draft.SecretEnginesNode, engineNames);
        CheckSecretGrants(reader, engineNames, agents);
        var signals = draft.SignalsNode is null ? null : ReadSignals(reader, draft.SignalsNode, trust);
        if (reader.Errors.Count > 0)
        {
            return null;
        }

        return new BrokerPolicy
        {
            Digest = digest,
            Source = source,
            Trust = new TrustPolicy(trust.Spiffe.AsReadOnly(), trust.Oidc.AsReadOnly()),
            Agents = agents.AsReadOnly(),
            Signals = signals,
            SecretEngines = secretEngines.AsReadOnly(),
        };
    }

    // ---- root ------------------------------------------------------------------------------

    private sealed class RootDraft
    {
        public YNode? TrustNode;
        public YNode? AgentsNode;
        public YNode? SignalsNode;
        public YNode? SecretEnginesNode;
    }

    private static readonly KeySpec<RootDraft>[] RootSchema =
    [
        new("version", Required: true, (r, d, v, p) =>
        {
            if (r.ReadInt(v, p) is int version && version != SupportedVersion)
            {
                r.Error(v, p, $"unsupported version {version}; this broker reads version {SupportedVersion}");
            }
        }),
        new("trust", Required: true, (r, d, v, p) => d.TrustNode = v),
        new("agents", Required: true, (r, d, v, p) => d.AgentsNode = v),
        new("signals", Required: false, (r, d, v, p) => d.SignalsNode = v),
        new("secret_engines", Required: false, (r, d, v, p) => d.SecretEnginesNode = v),
    ];

    // ---- trust -----------------------------------------------------------------------------

    private sealed class TrustDraft
    {
        public YNode? SpiffeNode;
        public YNode? OidcNode;
        public readonly List<SpiffeTrustDomainPolicy> Spiffe = [];
        public readonly List<OidcIssuerPolicy> Oidc = [];

        /// <summary>Every well-formed trust domain named, even in an entry with other errors (avoids follow-on errors).</summary>
        public readonly Dictionary<string, int> DomainLines = new(StringComparer.Ordinal);
        public readonly Dictionary<string, int> IssuerLines = new(StringComparer.Ordinal);
        public readonly List<(string Prefix, YNode At, string Issuer)> Prefixes = [];
    }

    private static readonly KeySpec<TrustDraft>[] TrustSchema =
    [
        new("spiffe", Required: false, (r, d, v, p) => d.SpiffeNode = v),
        new("oidc", Required: false, (r, d, v, p) => d.OidcNode = v),
    ];

    private static void ReadTrust(PolicyReader reader, YNode node, TrustDraft trust)
    {
        if (!reader.ReadMapping(node, "trust", TrustSchema, trust))
        {
            return;
        }

        var spiffe = trust.SpiffeNode is null ? [] : reader.ReadList(trust.SpiffeNode, "trust.spiffe", nullIsEmpty: true) ?? [];
        for (var i = 0; i < spiffe.Count; i++)
        {
            ReadSpiffeDomain(reader, spiffe[i], $"trust.spiffe[{i}]", trust);
        }

        var oidc = trust.OidcNode is null ? [] : reader.ReadList(trust.OidcNode, "trust.oidc", nullIsEmpty: true) ?? [];
        for (var i = 0; i < oidc.Count; i++)
        {
            ReadOidcIssuer(reader, oidc[i], $"trust.oidc[{i}]", trust);
        }

        CheckPrefixesDisjoint(reader, trust);

        if (spiffe.Count == 0 && oidc.Count == 0)
        {
            reader.Error(node, "trust", "declare at least one trust source (a SPIFFE trust domain under 'spiffe' or an OIDC issuer under 'oidc')");
        }
    }

    private sealed class SpiffeDraft
    {
        public string? TrustDomain;
        public YNode? JwtFileNode;
        public string? JwtFile;
        public YNode? JwtUrlNode;
        public Uri? JwtUrl;
        public YNode? X509FileNode;
        public string? X509File;
        public TimeSpan? Refresh;
        public bool? SingleUse;
    }

    private static readonly KeySpec<SpiffeDraft>[] SpiffeSchema =
    [
        new("trust_domain", Required: true, (r, d, v, p) => d.TrustDomain = ReadTrustDomain(r, v, p)),
        new("jwt_bundle_file", Required: false, (r, d, v, p) => { d.JwtFileNode = v; d.JwtFile = r.ReadExistingFile(v, p); }),
        new("jwt_bundle_url", Required: false, (r, d, v, p) => { d.JwtUrlNode = v; d.JwtUrl = ReadUrl(r, v, p, allowLoopbackHttp: false); }),
        new("x509_bundle_file", Required: false, (r, d, v, p) => { d.X509FileNode = v; d.X509File = r.ReadExistingFile(v, p); }),
        new("refresh", Required: false, (r, d, v, p) => d.Refresh = r.ReadDuration(v, p, MinRefresh, MaxRefresh)),
        new("single_use_proofs", Required: false, (r, d, v, p) => d.SingleUse = r.ReadBool(v, p)),
    ];

    private static void ReadSpiffeDomain(PolicyReader reader, YNode node, string path, TrustDraft trust)
    {
        var d = new SpiffeDraft();
        if (!reader.ReadMapping(node, path, SpiffeSchema, d))
        {
            return;
        }

        if (d.TrustDomain is not null)
        {
            if (trust.DomainLines.TryGetValue(d.TrustDomain, out var firstLine))
            {
                reader.Error(node, path, $"trust domain '{d.TrustDomain}' is already declared at line {firstLine}");
            }
            else
            {
                trust.DomainLines[d.TrustDomain] = node.Line;
            }
        }

        if (d.JwtFileNode is not null && d.JwtUrlNode is not null)
        {
            var later = d.JwtUrlNode.Line >= d.JwtFileNode.Line ? d.JwtUrlNode : d.JwtFileNode;
            reader.Error(later, path, "set jwt_bundle_file or jwt_bundle_url, not both");
        }
        else if (d.JwtFileNode is null && d.JwtUrlNode is null && d.X509FileNode is null)
        {
            reader.Error(node, path, "needs a bundle: jwt_bundle_file or jwt_bundle_url (JWT-SVIDs), and/or x509_bundle_file (X.509-SVIDs over mutual TLS)");
        }

        // Any error above discards the whole policy, so a partly read entry is never used.
        if (d.TrustDomain is null)
        {
            return;
        }

        trust.Spiffe.Add(new SpiffeTrustDomainPolicy(
            d.TrustDomain,
            d.JwtFile,
            d.JwtUrl,
            d.X509File,
            d.Refresh ?? DefaultRefresh,
            d.SingleUse ?? false));
    }

    private static string? ReadTrustDomain(PolicyReader reader, YNode node, string path)
    {
        var text = reader.ReadString(node, path, maxLength: 255);
        if (text is null)
        {
            return null;
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            reader.Error(node, path, $"write the trust domain without a scheme or path (e.g. 'example.org', not '{PolicyReader.Shorten(text)}')");
            return null;
        }

        if (!TrustDomainRegex().IsMatch(text))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' is not a SPIFFE trust domain; use lower-case letters, digits, '.', '-' and '_' only");
            return null;
        }

        return text;
    }

    private sealed class OidcDraft
    {
        public string? Issuer;
        public YNode? JwksFileNode;
        public string? JwksFile;
        public YNode? JwksUriNode;
        public Uri? JwksUri;
        public string? SubjectClaim;
        public YNode? PrefixNode;
        public string? Prefix;
        public TimeSpan? Refresh;
        public bool? SingleUse;
    }

    private static readonly KeySpec<OidcDraft>[] OidcSchema =
    [
        new("issuer", Required: true, (r, d, v, p) => d.Issuer = ReadUrl(r, v, p, allowLoopbackHttp: true, isIssuer: true) is null ? null : ((YScalar)v).Value),
        new("jwks_file", Required: false, (r, d, v, p) => { d.JwksFileNode = v; d.JwksFile = r.ReadExistingFile(v, p); }),
        new("jwks_uri", Required: false, (r, d, v, p) => { d.JwksUriNode = v; d.JwksUri = ReadUrl(r, v, p, allowLoopbackHttp: true); }),
        new("subject_claim", Required: false, (r, d, v, p) =>
        {
            d.SubjectClaim = r.ReadString(v, p, maxLength: 128);
            if (d.SubjectClaim is not null && d.SubjectClaim.Any(char.IsWhiteSpace))
            {
                r.Error(v, p, "a claim name has no spaces");
            }
        }),
        new("workload_id_prefix", Required: false, (r, d, v, p) => { d.PrefixNode = v; d.Prefix = ReadPrefix(r, v, p); }),
        new("refresh", Required: false, (r, d, v, p) => d.Refresh = r.ReadDuration(v, p, MinRefresh, MaxRefresh)),
        new("single_use_proofs", Required: false, (r, d, v, p) => d.SingleUse = r.ReadBool(v, p)),
    ];

    private static void ReadOidcIssuer(PolicyReader reader, YNode node, string path, TrustDraft trust)
    {
        var d = new OidcDraft();
        if (!reader.ReadMapping(node, path, OidcSchema, d))
        {
            return;
        }

        if (d.Issuer is not null)
        {
            if (trust.IssuerLines.TryGetValue(d.Issuer, out var firstLine))
            {
                reader.Error(node, path, $"issuer '{PolicyReader.Shorten(d.Issuer)}' is already declared at line {firstLine}");
            }
            else
            {
                trust.IssuerLines[d.Issuer] = node.Line;
            }
        }

        if (d.JwksFileNode is not null && d.JwksUriNode is not null)
        {
            var later = d.JwksUriNode.Line >= d.JwksFileNode.Line ? d.JwksUriNode : d.JwksFileNode;
            reader.Error(later, path, "set jwks_file or jwks_uri, not both (or neither, to use discovery)");
        }

        var prefix = d.PrefixNode is null
            ? d.Issuer is null ? null : $"oidc:{d.Issuer}#"
            : d.Prefix;
        if (prefix is not null)
        {
            trust.Prefixes.Add((prefix, d.PrefixNode ?? node, d.Issuer ?? "?"));
        }

        // Any error above discards the whole policy, so a partly read entry is never used.
        if (d.Issuer is null || prefix is null)
        {
            return;
        }

        trust.Oidc.Add(new OidcIssuerPolicy(
            d.Issuer,
            d.JwksUri,
            d.JwksFile,
            d.SubjectClaim ?? "sub",
            prefix,
            d.Refresh ?? DefaultRefresh,
            d.SingleUse ?? false));
    }

    private static string? ReadPrefix(PolicyReader reader, YNode node, string path)
    {
        var text = reader.ReadString(node, path, maxLength: 256);
        if (text is null)
        {
            return null;
        }

        if (text.Any(char.IsWhiteSpace) || text.Contains('*', StringComparison.Ordinal))
        {
            reader.Error(node, path, "a workload id prefix has no spaces and no '*'");
            return null;
        }

        // Otherwise an OIDC subject could be mapped to an id that reads as a SPIFFE ID: the
        // prefix must not start with 'spiffe:' nor be a start of it ('', 's', 'spif', ...) that
        // a chosen subject ('fe://example.org/admin') completes.
        if (text.StartsWith("spiffe:", StringComparison.OrdinalIgnoreCase) || "spiffe:".StartsWith(text, StringComparison.OrdinalIgnoreCase))
        {
            reader.Error(node, path, $"workload_id_prefix '{PolicyReader.Shorten(text)}' could make an OIDC subject read as a SPIFFE ID ('spiffe://...'); SPIFFE IDs come only from SPIFFE trust domains. Use a prefix such as 'k8s:'");
            return null;
        }

        return text;
    }

    /// <summary>
    /// When one issuer's prefix starts another's, a subject chosen at the first issuer can
    /// produce a workload id that matches the second issuer's agents.
    /// </summary>
    private static void CheckPrefixesDisjoint(PolicyReader reader, TrustDraft trust)
    {
        for (var j = 1; j < trust.Prefixes.Count; j++)
        {
            for (var i = 0; i < j; i++)
            {
                var (a, aAt, aIssuer) = trust.Prefixes[i];
                var (b, bAt, _) = trust.Prefixes[j];
                if (a.StartsWith(b, StringComparison.Ordinal) || b.StartsWith(a, StringComparison.Ordinal))
                {
                    reader.Error(bAt, $"trust.oidc[{j}].workload_id_prefix",
                        $"prefix '{PolicyReader.Shorten(b)}' overlaps issuer '{PolicyReader.Shorten(aIssuer)}''s prefix '{PolicyReader.Shorten(a)}' (line {aAt.Line}); one issuer's subjects could pass for the other's");
                    break;
                }
            }
        }
    }

    private static Uri? ReadUrl(PolicyReader reader, YNode node, string path, bool allowLoopbackHttp, bool isIssuer = false)
    {
        var text = reader.ReadString(node, path, maxLength: 2048);
        if (text is null)
        {
            return null;
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || !text.StartsWith(uri.Scheme + "://", StringComparison.OrdinalIgnoreCase))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' is not an absolute URL");
            return null;
        }

        if (uri.UserInfo.Length > 0)
        {
            reader.Error(node, path, "a URL here must not carry credentials");
            return null;
        }

        var loopback = uri.Host is "localhost" or "127.0.0.1" or "[::1]";
        var schemeOk = uri.Scheme == Uri.UriSchemeHttps || (allowLoopbackHttp && uri.Scheme == Uri.UriSchemeHttp && loopback);
        if (!schemeOk)
        {
            reader.Error(node, path, allowLoopbackHttp
                ? $"'{PolicyReader.Shorten(text)}' must be an https URL (http only for localhost, 127.0.0.1 or [::1])"
                : $"'{PolicyReader.Shorten(text)}' must be an https URL");
            return null;
        }

        if (uri.Fragment.Length > 0 || (isIssuer && uri.Query.Length > 0))
        {
            reader.Error(node, path, isIssuer
                ? $"'{PolicyReader.Shorten(text)}' must not have a query or fragment"
                : $"'{PolicyReader.Shorten(text)}' must not have a fragment");
            return null;
        }

        return uri;
    }

    // ---- agents ----------------------------------------------------------------------------

    private sealed class AgentDraft(TrustDraft trust)
    {
        public TrustDraft Trust { get; } = trust;
        public string? Name;
        public WorkloadPattern? Match;
        public YNode? PhasesNode;
        public readonly Dictionary<TaskPhase, PhaseRule> Phases = [];
        public bool PhasesInvalid;
        public string? Owner;
        public TaskPhase? DefaultPhase;
        public YNode? DefaultPhaseNode;
        public readonly List<WorkloadPattern> DelegateTo = [];
        public YNode? DelegateToNode;
        public int MaxDelegationDepth;
        public YNode? MaxDelegationDepthNode;
        public bool DelegationInvalid;
    }

    private static readonly KeySpec<AgentDraft>[] PhasesSchema =
    [
        .. Enum.GetValues<TaskPhase>().Select(phase => new KeySpec<AgentDraft>(phase.ToWire(), Required: false, (r, d, v, p) =>
        {
            if (ReadPhase(r, v, p, phase) is { } rule)
            {
                d.Phases[phase] = rule;
            }
            else
            {
                d.PhasesInvalid = true;
            }
        })),
    ];

    private static readonly KeySpec<AgentDraft>[] AgentSchema =
    [
        new("name", Required: true, (r, d, v, p) =>
        {
            d.Name = r.ReadString(v, p);
            if (d.Name is not null && !AgentNameRegex().IsMatch(d.Name))
            {
                r.Error(v, p, $"'{PolicyReader.Shorten(d.Name)}' is not a valid agent name; use 1 to {MaxAgentNameLength} of a-z, 0-9, '-' and '_'");
                d.Name = null;
            }
        }),
        new("match", Required: true, (r, d, v, p) => d.Match = ReadPattern(r, v, p, d.Trust)),
        new("owner", Required: false, (r, d, v, p) => d.Owner = ReadOperatorName(r, v, p)),
        .. OAuthAgentSchema,
        .. DelegationAgentSchema,
        new("phases", Required: true, (r, d, v, p) =>
        {
            d.PhasesNode = v;
            var before = r.Errors.Count;
            if (!r.ReadMapping(v, p, PhasesSchema, d, keyNoun: "phase") || r.Errors.Count != before)
            {
                d.PhasesInvalid = true;
            }
        }),
    ];

    private static List<AgentRule> ReadAgents(PolicyReader reader, YNode node, TrustDraft trust)
    {
        var rules = new List<AgentRule>();
        var items = reader.ReadList(node, "agents", nullIsEmpty: true);
        if (items is null)
        {
            return rules;
        }

        if (items.Count == 0)
        {
            reader.Error(node, "agents", "list at least one agent");
            return rules;
        }

        var nameLines = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var path = $"agents[{i}]";
            var d = new AgentDraft(trust);
            if (!reader.ReadMapping(items[i], path, AgentSchema, d))
            {
                continue;
            }

            if (d.Name is not null)
            {
                if (nameLines.TryGetValue(d.Name, out var firstLine))
                {
                    reader.Error(items[i], path, $"agent name '{d.Name}' is already used at line {firstLine}");
                }
                else
                {
                    nameLines[d.Name] = items[i].Line;
                }
            }

            if (d.PhasesNode is not null && !d.PhasesInvalid && d.Phases.Count == 0)
            {
                reader.Error(d.PhasesNode, $"{path}.phases", "define at least one phase (planning, execution or recovery)");
            }

            CheckDefaultPhase(reader, d, path);
            CheckDelegation(reader, d, path);
            if (d.Name is not null && d.Match is not null && d.Phases.Count > 0 && !d.PhasesInvalid && !d.DelegationInvalid)
            {
                rules.Add(new AgentRule(d.Name, d.Match, d.Phases.ToFrozenDictionary(), d.Owner, d.DefaultPhase, [.. d.DelegateTo], d.MaxDelegationDepth));
            }
        }

        return rules;
    }

    /// <summary>
    /// A SPIFFE ID pattern must name a configured trust domain literally; any other pattern
    /// must start with a configured OIDC issuer's workload id prefix. Either way a pattern
    /// can only ever match identities some configured trust source vouches for.
    /// </summary>
    private static WorkloadPattern? ReadPattern(PolicyReader reader, YNode node, string path, TrustDraft trust)
    {
        var text = reader.ReadString(node, path, maxLength: 2048);
        if (text is null)
        {
            return null;
        }

        if (!WorkloadPattern.TryParse(text, out var pattern, out var patternError))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}': {patternError}");
            return null;
        }

        if (text.StartsWith(SpiffeScheme, StringComparison.Ordinal))
        {
            return CheckSpiffePattern(reader, node, path, text, trust) ? pattern : null;
        }

        if (text.StartsWith("spiffe:", StringComparison.OrdinalIgnoreCase))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' must start with 'spiffe://' in lower case");
            return null;
        }

        foreach (var (prefix, _, _) in trust.Prefixes)
        {
            if (text.StartsWith(prefix, StringComparison.Ordinal) && text.Length > prefix.Length)
            {
                return pattern;
            }
        }

        var known = trust.Prefixes.Count == 0
            ? "no OIDC issuers are configured"
            : "configured prefixes: " + string.Join(", ", trust.Prefixes.Select(p => $"'{p.Prefix}'"));
        reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' must be a spiffe:// pattern or start with an OIDC issuer's workload_id_prefix ({known})");
        return null;
    }

    private static bool CheckSpiffePattern(PolicyReader reader, YNode node, string path, string text, TrustDraft trust)
    {
        var rest = text[SpiffeScheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var domain = slash < 0 ? rest : rest[..slash];
        if (domain.Contains('*', StringComparison.Ordinal))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}': the trust domain in a pattern must be written out, not matched with '*'");
            return false;
        }

        var ok = true;
        if (!trust.DomainLines.ContainsKey(domain))
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' names trust domain '{PolicyReader.Shorten(domain)}', which is not declared under trust.spiffe");
            ok = false;
        }

        if (slash < 0 || slash == rest.Length - 1)
        {
            reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' needs a path after the trust domain (e.g. spiffe://{domain}/agents/*)");
            return false;
        }

        var segments = rest[(slash + 1)..].Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (segment == "**" && i == segments.Length - 1)
            {
                continue;
            }

            if (segment.Length == 0 || segment is "." or ".." || !SpiffeSegmentRegex().IsMatch(segment))
            {
                reader.Error(node, path, $"'{PolicyReader.Shorten(text)}' has an invalid path segment '{PolicyReader.Shorten(segment)}'; segments are non-empty, not '.' or '..', and use letters, digits, '.', '-', '_' (and '*')");
                return false;
            }
        }

        return ok;
    }

    // ---- phases ----------------------------------------------------------------------------

    /// <summary>
    /// What one phase allows. Adding a per-phase key is a field here, a line in
    /// <see cref="PhaseSchema"/> and an argument to <see cref="PhaseRule"/>.
    /// </summary>
    private sealed class PhaseDraft
    {
        public IReadOnlySet<string>? Scopes;
        public IReadOnlySet<string>? Audiences;
        public TimeSpan? MaxTtl;
        public bool KeepTokensOnExit;
        public Risk.RiskLevel? RiskCeiling;
        public Risk.UnknownRiskStance? OnUnknownRisk;
        public YNode? GatesNode;
        public YNode? SecretsNode;
    }

    private static readonly KeySpec<PhaseDraft>[] PhaseSchema =
    [
        new("scopes", Required: true, (r, d, v, p) => d.Scopes = ReadStringSet(r, v, p, "scope", IsValidScope,
            $"1 to {MaxScopeLength} characters of A-Z a-z 0-9 : . _ / * -")),
        new("audiences", Required: true, (r, d, v, p) => d.Audiences = ReadStringSet(r, v, p, "audience", IsValidAudience,
            $"an absolute URI or SPIFFE ID of at most {MaxAudienceLength} characters")),
        new("max_ttl", Required: true, (r, d, v, p) => d.MaxTtl = r.ReadDuration(v, p, MinTtl, MaxTtl)),
        new("keep_tokens_on_exit", Required: false, (r, d, v, p) => d.KeepTokensOnExit = r.ReadBool(v, p) ?? false),
        new("risk_ceiling", Required: false, (r, d, v, p) => d.RiskCeiling = ReadRiskLevel(r, v, p)),
        new("on_unknown_risk", Required: false, (r, d, v, p) => d.OnUnknownRisk = ReadStance(r, v, p)),
        new("gated_scopes", Required: false, (r, d, v, p) => d.GatesNode = v),
        new("secrets", Required: false, (r, d, v, p) => d.SecretsNode = v),
    ];

    private static PhaseRule? ReadPhase(PolicyReader reader, YNode node, string path, TaskPhase phase)
    {
        var d = new PhaseDraft();
        var before = reader.Errors.Count;
        if (!reader.ReadMapping(node, path, PhaseSchema, d) || reader.Errors.Count != before)
        {
            return null;
        }

        var gates = d.GatesNode is null || d.Scopes is null ? null : ReadGates(reader, d.GatesNode, $"{path}.gated_scopes", d.Scopes);
        var secrets = d.SecretsNode is null || d.MaxTtl is null ? null : ReadSecretGrants(reader, d.SecretsNode, $"{path}.secrets", d.MaxTtl.Value);
        if (reader.Errors.Count != before)
        {
            return null;
        }

        return d.Scopes is null || d.Audiences is null || d.MaxTtl is null
            ? null
            : new PhaseRule(
                d.Scopes,
                d.Audiences,
                d.MaxTtl.Value,
                d.KeepTokensOnExit,
                d.RiskCeiling ?? Risk.RiskLevels.DefaultCeiling(phase),
                d.OnUnknownRisk ?? Risk.RiskLevels.DefaultStance(phase),
                gates,
                secrets);
    }

    private static FrozenSet<string>? ReadStringSet(PolicyReader reader, YNode node, string path, string noun, Func<string, bool> isValid, string rule)
    {
        var items = reader.ReadList(node, path);
        if (items is null)
        {
            return null;
        }

        if (items.Count == 0)
        {
            reader.Error(node, path, $"list at least one {noun}");
            return null;
        }

        var values = new Dictionary<string, int>(StringComparer.Ordinal);
        var ok = true;
        for (var i = 0; i < items.Count; i++)
        {
            var itemPath = $"{path}[{i}]";
            var text = reader.ReadString(items[i], itemPath);
            if (text is null)
            {
                ok = false;
                continue;
            }

            if (!isValid(text))
            {
                reader.Error(items[i], itemPath, $"'{PolicyReader.Shorten(text)}' is not a valid {noun}; expected {rule}");
                ok = false;
            }
            else if (values.TryGetValue(text, out var firstLine))
            {
                reader.Error(items[i], itemPath, $"duplicate {noun} '{PolicyReader.Shorten(text)}' (first at line {firstLine})");
                ok = false;
            }
            else
            {
                values[text] = items[i].Line;
            }
        }

        return ok ? values.Keys.ToFrozenSet(StringComparer.Ordinal) : null;
    }

    private static bool IsValidScope(string scope) => ScopeRegex().IsMatch(scope);

    private static bool IsValidAudience(string audience) =>
        audience.Length <= MaxAudienceLength
        && !audience.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
        && Uri.TryCreate(audience, UriKind.Absolute, out var uri)
        && audience.StartsWith(uri.Scheme + ":", StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex("^[a-z0-9._-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex TrustDomainRegex();

    [GeneratedRegex("^[a-z0-9_-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex AgentNameRegex();

    [GeneratedRegex("^[A-Za-z0-9._*-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex SpiffeSegmentRegex();

    [GeneratedRegex("^[A-Za-z0-9:._/*-]{1,128}$", RegexOptions.CultureInvariant)]
    private static partial Regex ScopeRegex();
}
