using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using Broker.Cli;

namespace Broker.Client.Tests;

public sealed class TokenDecodeTests
{
    private static readonly string Token =
        Part("""{"alg":"ES256","kid":"k1","typ":"at+jwt"}""") + "."
        + Part("""{"sub":"spiffe://dev.local/agents/demo","scope":"repo:read","exp":1893456000}""") + ".c2lnbmF0dXJl";

    [Fact]
    public async Task Decode_prints_header_and_claims_as_json_and_warns_it_did_not_validate()
    {
        var run = await Cli.RunAsync("token", "decode", Token);

        Assert.Equal(ExitCodes.Success, run.ExitCode);
        var output = JsonDocument.Parse(run.Out).RootElement;
        Assert.Equal("at+jwt", output.GetProperty("header").GetProperty("typ").GetString());
        Assert.Equal("spiffe://dev.local/agents/demo", output.GetProperty("claims").GetProperty("sub").GetString());
        Assert.Equal(1893456000, output.GetProperty("claims").GetProperty("exp").GetInt64());
        Assert.Contains("NOT VALIDATED", run.Error, StringComparison.Ordinal);
        Assert.Contains("exp: 2030-01-01T00:00:00Z", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Decode_reads_stdin_for_a_dash_and_ignores_a_bearer_prefix()
    {
        var run = await Cli.RunAsync(["token", "decode", "-"], stdin: "Bearer " + Token + "\n");

        Assert.Equal(ExitCodes.Success, run.ExitCode);
        Assert.Equal("k1", JsonDocument.Parse(run.Out).RootElement.GetProperty("header").GetProperty("kid").GetString());
    }

    [Theory]
    [InlineData("not-a-token", "3 dot-separated parts")]
    [InlineData("a.b.c.d.e", "encrypted")]
    [InlineData("!!!.e30.sig", "base64url")]
    [InlineData("bm90IGpzb24.e30.sig", "not JSON")]
    [InlineData("WzFd.e30.sig", "not a JSON object")]
    [InlineData("", "no token")]
    public async Task Decode_refuses_what_is_not_a_compact_jwt_without_echoing_it(string input, string expected)
    {
        var run = await Cli.RunAsync("token", "decode", input);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains(expected, run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
        if (input.Length > 0)
        {
            Assert.DoesNotContain(input, run.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Decode_refuses_oversized_stdin()
    {
        var run = await Cli.RunAsync(["token", "decode", "-"], stdin: new string('a', 70_000));

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
    }

    private static string Part(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));
}
