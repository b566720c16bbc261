using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

internal static class PolicyAssert
{
    /// <summary>The load failed and one of its errors is on <paramref name="line"/> and mentions <paramref name="fragment"/>.</summary>
    public static PolicyError HasError(PolicyLoadResult result, int line, string fragment)
    {
        Assert.Null(result.Policy);
        Assert.NotEmpty(result.Errors);
        var match = result.Errors.FirstOrDefault(e => e.Line == line && e.Message.Contains(fragment, StringComparison.Ordinal));
        Assert.True(match is not null,
            $"expected an error on line {line} containing \"{fragment}\"; got:\n{string.Join("\n", result.Errors)}");
        return match!;
    }

    public static PolicyError SingleError(PolicyLoadResult result, int line, string fragment)
    {
        var error = HasError(result, line, fragment);
        Assert.True(result.Errors.Count == 1, $"expected one error; got:\n{string.Join("\n", result.Errors)}");
        return error;
    }

    public static BrokerPolicy Loaded(PolicyLoadResult result)
    {
        Assert.True(result.Policy is not null, $"expected the policy to load; got:\n{string.Join("\n", result.Errors)}");
        Assert.Empty(result.Errors);
        return result.Policy!;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes (never a fixed sleep).</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (DateTime.UtcNow < deadline)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(20);
        }

        return condition();
    }
}
