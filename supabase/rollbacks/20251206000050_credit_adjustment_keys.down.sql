drop table if exists hubspot_sync.credit_adjustments;
