DROP TABLE macros;
DROP TABLE case_viewers;
