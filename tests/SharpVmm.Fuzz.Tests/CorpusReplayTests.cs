namespace SharpVmm.Fuzz.Tests;

/// <summary>
/// Every committed corpus file (seeds, and inputs a campaign found and that were kept, findings included once fixed)
/// through its fuzz target, as ordinary tests: a target must end in a clear error or succeed, never throw anything
/// else. Fast (the corpora are small), and needs neither AFL nor SharpFuzz's instrumentation.
/// </summary>
public sealed class CorpusReplayTests
{
    private static string CorpusDir => Path.Combine(AppContext.BaseDirectory, "Corpus");

    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (string target in FuzzTargets.Names)
        {
            string dir = Path.Combine(CorpusDir, target);
            if (!Directory.Exists(dir)) continue;
            foreach (string file in Directory.GetFiles(dir).Order(StringComparer.Ordinal)) data.Add(target, Path.GetFileName(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Corpus_input_ends_in_a_clear_error_or_succeeds(string target, string file)
        => FuzzTargets.Find(target)!(File.ReadAllBytes(Path.Combine(CorpusDir, target, file)));

    [Fact]
    public void Every_target_has_seeds()
    {
        foreach (string target in FuzzTargets.Names)
            Assert.True(Directory.Exists(Path.Combine(CorpusDir, target)) && Directory.GetFiles(Path.Combine(CorpusDir, target)).Length > 0, $"no corpus for {target}");
    }

    [Fact]
    public void Seeds_made_from_todays_writers_pass_too()
    {
        // The committed seeds may lag a format change: the seed maker's fresh ones must pass as well.
        string dir = Directory.CreateTempSubdirectory("sharpvmm-seeds-").FullName;
        try
        {
            SeedMaker.Write(dir);
            foreach (string target in FuzzTargets.Names)
                foreach (string file in Directory.GetFiles(Path.Combine(dir, target)))
                    FuzzTargets.Find(target)!(File.ReadAllBytes(file));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
