#!/usr/bin/env python3
"""Compares the --json outputs of two scripts/protocol_runs.sh folders: every metric, timings
and the options' layout aside; prints 'identical' or the keys that differ, per file."""
import json,sys,glob,os
a,b=sys.argv[1],sys.argv[2]
skip={'wall_s','fit_s','train_s','seconds','pretrain_seconds','examples_per_s','options','device'}
def flat(j,p=''):
    out={}
    if isinstance(j,dict):
        for k,v in j.items():
            if k in skip: continue
            out.update(flat(v,p+'/'+k))
    elif isinstance(j,list):
        for i,v in enumerate(j): out.update(flat(v,p+'[%d]'%i))
    else: out[p]=j
    return out
for f in sorted(glob.glob(a+'/*.json')):
    n=os.path.basename(f)
    x=flat(json.load(open(f))); y=flat(json.load(open(os.path.join(b,n))))
    diff=[k for k in set(x)|set(y) if x.get(k)!=y.get(k) and not any(s in k for s in ['_s','speed','per_s','/s'])]
    print(n, 'identical' if not diff else 'DIFF', len(x), sorted(diff)[:8])
