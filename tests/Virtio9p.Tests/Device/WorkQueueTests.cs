using VirtFs.Virtio9p.Device;
using Xunit;

namespace VirtFs.Virtio9p.Tests.Device;

public sealed class WorkQueueTests
{
    [Fact]
    public void Every_item_reaches_exactly_one_worker_and_the_workers_end_after_Complete()
    {
        var queue = new WorkQueue<int>();
        const int Items = 20000, Workers = 4;
        var seen = new int[Items];
        var threads = new Thread[Workers];
        for (int w = 0; w < Workers; w++)
        {
            threads[w] = new Thread(() =>
            {
                var self = new WorkQueue<int>.Worker();
                while (queue.TryTake(self, out int item))
                {
                    Interlocked.Increment(ref seen[item]);
                }
            });
            threads[w].Start();
        }
        for (int i = 0; i < Items; i++)
        {
            Assert.True(queue.TryAdd(i));
            if (i % 1000 == 0) Thread.Sleep(1); // let workers go idle and be woken again
        }
        queue.Complete();
        foreach (Thread t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a worker did not end after Complete");
        }
        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.False(queue.TryAdd(-1));
    }

    [Fact]
    public void Items_queued_before_Complete_are_still_served()
    {
        var queue = new WorkQueue<int>();
        for (int i = 0; i < 3; i++) Assert.True(queue.TryAdd(i));
        queue.Complete();
        var self = new WorkQueue<int>.Worker();
        var taken = new List<int>();
        while (queue.TryTake(self, out int item)) taken.Add(item);
        Assert.Equal([0, 1, 2], taken);
    }
}
