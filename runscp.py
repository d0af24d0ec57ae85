import asyncio, sys, cProfile, pstats
from harness.scp import Profile, StorageSCP
profile = Profile(max_pdu=16384, max_associations=64, idle_timeout=None)
async def main():
    scp = StorageSCP(profile, sys.argv[1])
    port = await scp.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await scp.stop()
pr=cProfile.Profile(); pr.enable()
asyncio.run(main())
pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(25)
