namespace VirtFs.VhostUser.Tests;

/// <summary>QueueCrew alone, with a semaphore for the kick and a scripted drain: the races a real ring hits rarely.</summary>
public sealed class QueueCrewTests
{
    private sealed class Script : IDisposable
    {
        public readonly SemaphoreSlim Kicks = new(0);
        public volatile bool Stopped;
        public int Waits;       // calls of waitForWork so far
        public int Drains;      // calls of drain so far
        public readonly ManualResetEventSlim ServeGate = new(false), DrainGate = new(false);
        public QueueCrew Crew = null!;

        public bool WaitForWork()
        {
            Interlocked.Increment(ref Waits);
            Kicks.Wait();
            return !Stopped;
        }

        public void Dispose()
        {
            Stopped = true;
            ServeGate.Set();
            DrainGate.Set();
            Crew.Stop(() => Kicks.Release(QueueCrew.MaxThreads), TimeSpan.FromSeconds(5), () => { });
        }
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void A_kick_taken_while_another_thread_owned_the_ring_is_drained_after_that_thread_hands_off()
    {
        using var s = new Script();
        bool handedOffFirst = false, handedOffSecond = false;
        s.Crew = new QueueCrew(s.WaitForWork, () =>
        {
            switch (Interlocked.Increment(ref s.Drains))
            {
                case 1: // the first thread: hands off at once (a second thread is started) and blocks serving
                    handedOffFirst = s.Crew.TryHandOff(() => { }, () => s.Kicks.Release());
                    s.ServeGate.Wait();
                    break;
                case 2: // the second thread, woken by a kick: owns the ring for a while, then hands off too
                    s.DrainGate.Wait();
                    handedOffSecond = s.Crew.TryHandOff(() => { }, () => s.Kicks.Release());
                    break;
            }
        }, "crew-test");
        s.Crew.Start();
        WaitFor(() => s.Drains == 1 && s.Waits == 1, "the first hand-off and the second thread waiting");
        Assert.True(handedOffFirst);

        s.Kicks.Release();
        WaitFor(() => s.Drains == 2, "the second thread draining");
        // A kick while the second thread owns the ring; the first thread, done serving, takes it, finds the ring
        // owned, leaves its request for one more drain and goes back to wait.
        s.Kicks.Release();
        s.ServeGate.Set();
        WaitFor(() => s.Waits == 3, "the first thread back waiting after finding the ring owned");
        Assert.Equal(2, s.Drains);

        // The owner hands off: that request for one more drain must not be lost with it.
        s.DrainGate.Set();
        WaitFor(() => s.Drains == 3, "the drain the kick asked for");
        Assert.True(handedOffSecond);
    }

    [Fact]
    public void At_MaxThreads_busy_the_hand_off_is_refused_and_only_the_drainer_is_off_the_hook()
    {
        using var s = new Script();
        int accepted = 0, refused = 0;
        s.Crew = new QueueCrew(s.WaitForWork, () =>
        {
            Interlocked.Increment(ref s.Drains);
            if (s.Crew.TryHandOff(() => { }, () => s.Kicks.Release()))
            {
                Interlocked.Increment(ref accepted);
                s.ServeGate.Wait();
            }
            else
            {
                Interlocked.Increment(ref refused);
                Assert.True(s.Crew.IsDraining); // still the drainer: it must not block
            }
        }, "crew-test");
        s.Crew.Start();
        for (int i = 1; i < QueueCrew.MaxThreads + 3; i++)
        {
            WaitFor(() => s.Drains == i, $"drain {i}");
            s.Kicks.Release();
        }
        WaitFor(() => s.Drains == QueueCrew.MaxThreads + 3, "the last drain");
        Assert.Equal(QueueCrew.MaxThreads - 1, accepted);
        Assert.Equal(4, refused);
    }
}
