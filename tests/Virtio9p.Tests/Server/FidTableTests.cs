using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Released fids are reused (issue 14: a walk and its clunk allocate nothing), and only once no request
/// can still be using them.</summary>
public sealed class FidTableTests
{
    private static readonly byte[] PathA = "/a"u8.ToArray();
    private static readonly byte[] PathB = "/b"u8.ToArray();

    private readonly SessionBudget _budget = new(new SessionLimits());
    private readonly FidTable _table;

    public FidTableTests() => _table = new FidTable(_budget);

    private Fid AddNew(uint id, byte[] path, uint uid)
    {
        Fid fid = _table.Rent(id, path, uid);
        Assert.Equal(0, _table.Add(fid));
        return fid;
    }

    [Fact]
    public void A_clunked_fid_becomes_the_next_fid_with_nothing_of_the_old_one()
    {
        Fid first = AddNew(1, PathA, 1000);
        long generation = first.Generation;
        first.Kind = FidKind.OpenDirectory;
        first.DirectoryOffset = 42;
        first.ReadsMayBlock = true;
        _table.Remove(1)!.Put(); // the clunk: the last reference

        Fid second = AddNew(7, PathB, 0);
        Assert.Same(first, second);
        Assert.Equal(generation + 1, second.Generation);
        Assert.Equal(7u, second.Id);
        Assert.Equal(0u, second.Uid);
        Assert.Equal(PathB, second.Path);
        Assert.Equal(FidKind.Path, second.Kind);
        Assert.Equal(0, second.DirectoryOffset);
        Assert.False(second.ReadsMayBlock);
        Assert.Null(second.Handle);
        Assert.Same(second, _table.Acquire(7));
        Assert.Null(_table.Acquire(1));
    }

    [Fact]
    public void A_fid_a_request_still_uses_is_not_reused_until_that_request_is_done()
    {
        Fid first = AddNew(1, PathA, 0);
        Fid? held = _table.Acquire(1); // a request in progress
        Assert.Same(first, held);
        _table.Remove(1)!.Put(); // clunked meanwhile: the table's reference goes, the request's stays

        Fid other = AddNew(2, PathB, 0);
        Assert.NotSame(first, other);
        Assert.Equal(PathA, first.Path); // the request still sees its own fid

        held!.Put(); // the request is done
        Assert.Same(first, AddNew(3, PathB, 0));
    }

    [Fact]
    public void A_fid_that_never_entered_the_table_is_not_reused()
    {
        AddNew(1, PathA, 0);
        Fid duplicate = _table.Rent(1, PathB, 0);
        Assert.Equal(-22, _table.Add(duplicate)); // EINVAL: newfid in use
        Assert.NotSame(duplicate, _table.Rent(2, PathB, 0));
        Assert.Equal(1, _table.Count);
        Assert.Equal(1, _budget.Fids);
    }

    [Fact]
    public void At_most_the_spare_count_of_released_fids_is_kept()
    {
        var fids = new List<Fid>();
        for (uint id = 0; id < FidTable.SpareFids + 10; id++)
        {
            fids.Add(AddNew(id, PathA, 0));
        }
        foreach (Fid fid in fids)
        {
            _table.Remove(fid.Id)!.Put();
        }
        var reused = new HashSet<Fid>(ReferenceEqualityComparer.Instance);
        for (uint id = 0; id < FidTable.SpareFids + 10; id++)
        {
            Fid fid = AddNew(id, PathB, 0);
            if (fids.Contains(fid))
            {
                reused.Add(fid);
            }
        }
        Assert.Equal(FidTable.SpareFids, reused.Count);
    }
}
