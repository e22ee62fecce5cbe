namespace SharpVmm.Boot.Tests.Initramfs;

/// <summary>Cheap checks of guest/fetch.sh and guest/setup.sh that never touch the network.</summary>
public class GuestScriptTests
{
    private static string Script(string name)
    {
        string? repo = TestEnvironment.RepoRoot;
        Assert.NotNull(repo);
        return Path.Combine(repo, "guest", name);
    }

    [ToolFact("bash", "bash")]
    public void Scripts_parse()
    {
        foreach (var name in new[] { "fetch.sh", "setup.sh" })
        {
            var (code, output) = TestEnvironment.Run("bash", ["-n", Script(name)]);
            Assert.True(code == 0, $"{name}: {output}");
        }
    }

    [ToolFact("bash", "bash")]
    public void Scripts_explain_themselves_and_reject_unknown_arguments()
    {
        foreach (var name in new[] { "fetch.sh", "setup.sh" })
        {
            var (code, help) = TestEnvironment.Run("bash", [Script(name), "--help"]);
            Assert.Equal(0, code);
            Assert.Contains("Usage:", help, StringComparison.Ordinal);

            (code, var error) = TestEnvironment.Run("bash", [Script(name), "--bogus"]);
            Assert.Equal(2, code);
            Assert.Contains("unknown argument '--bogus'", error, StringComparison.Ordinal);
        }
    }
}
