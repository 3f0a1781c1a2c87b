"""Customer profiles for personalised advertising (requirements P1-P4, C2, C4, C6).

* :mod:`pipelines.profiles.attributes`: administrative, socio-demographic, geographic, home and purchase columns;
* :mod:`pipelines.profiles.tv`: TV daily aggregates, TV interests and the scoring formula shared by both channels;
* :mod:`pipelines.profiles.web`: web daily aggregates (C4-passing events), web, loyalty and purchase interests,
  ad-serving ids and TV exposure features;
* :mod:`pipelines.profiles.build`: the stage (incremental aggregates, consent gate, outputs, internal evidence).

The first three are pure ``DataFrame -> DataFrame`` transforms made of Spark built-ins; only ``build`` reads
and writes (through :mod:`pipelines.io`).
"""
