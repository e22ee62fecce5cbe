using System.Runtime.ExceptionServices;

namespace SharpVmm.Block.Tests;

/// <summary>Runs an action on its own thread and fails the test if it does not finish in time (a hang).</summary>
internal static class Bounded
{
    public static void Run(Action action, TimeSpan limit, string what)
    {
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try { action(); }
            catch (Exception e) { failure = e; }
        }) { IsBackground = true };
        t.Start();
        Assert.True(t.Join(limit), $"{what}: did not finish within {limit.TotalSeconds} s (hang)");
        if (failure != null) ExceptionDispatchInfo.Capture(failure).Throw();
    }
}
