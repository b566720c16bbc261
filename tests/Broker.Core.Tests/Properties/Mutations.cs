using CsCheck;

namespace Broker.Core.Tests.Properties;

/// <summary>Generators for what an attacker sends: random text over a hostile alphabet, and edits of a valid input.</summary>
internal static class Mutations
{
    /// <summary>base64url, the JWS separator, JSON punctuation, whitespace, padding, non-ASCII and a control character.</summary>
    public const string HostileAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ {}\":,[]\\\u00e9\u0000\u2028";

    /// <summary>Iterations per property: enough to find shallow mistakes, bounded so each property runs in about a second.</summary>
    public const int Iterations = 400;

    public static readonly Gen<char> HostileChar = Gen.Char[HostileAlphabet];

    /// <summary>One to three edits (replace, delete, insert, duplicate a span) of <paramref name="original"/>.</summary>
    public static Gen<string> Of(string original) =>
        Gen.Int[1, 3].SelectMany(count => Edit(original, count));

    private static Gen<string> Edit(string text, int remaining)
    {
        if (remaining == 0)
        {
            return Gen.Const(text);
        }

        var one =
            from kind in Gen.Int[0, 3]
            from at in Gen.Int[0, Math.Max(0, text.Length - 1)]
            from length in Gen.Int[1, 8]
            from c in HostileChar
            select kind switch
            {
                0 when text.Length > 0 => text[..at] + c + text[(at + 1)..],
                1 when text.Length > 0 => text.Remove(at, Math.Min(length, text.Length - at)),
                2 => text.Insert(at, c.ToString()),
                _ => text.Insert(at, text.Substring(at, Math.Min(length, text.Length - at))),
            };
        return one.SelectMany(edited => Edit(edited, remaining - 1));
    }
}
