using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Signing;

/// <summary>
/// The one JWKS writer: IdentityModel's <see cref="JsonWebKey"/> serialized by its own member
/// names, leaving out absent and empty members (an empty <c>key_ops</c> would tell strict
/// clients the key may do nothing). Refuses a key with private parts.
/// </summary>
public static class JwksWriter
{
    public const string ContentType = "application/jwk-set+json";

    private static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { OmitEmptyCollections } },
    };

    /// <summary><c>{"keys":[...]}</c> as UTF-8 JSON.</summary>
    public static byte[] Write(IEnumerable<JsonWebKey> keys)
    {
        var list = keys.ToList();
        if (list.Any(k => k.HasPrivateKey))
        {
            throw new InvalidOperationException("A JWKS is public: a key with private parts cannot be written.");
        }

        return JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, List<JsonWebKey>> { ["keys"] = list }, Options);
    }

    private static void OmitEmptyCollections(JsonTypeInfo type)
    {
        foreach (var property in type.Properties)
        {
            if (typeof(IEnumerable).IsAssignableFrom(property.PropertyType) && property.PropertyType != typeof(string))
            {
                property.ShouldSerialize = (_, value) => value is not ICollection { Count: 0 };
            }
        }
    }
}
