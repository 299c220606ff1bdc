"""The rules: one place for each rule the city sets.

The working-day calendar, time limits and traffic lights (`calendar`, `deadlines`),
who may see and do what (`access`), the process data tables (`tables`), form fields
(`forms`), the intake form (`intake`) and the lifecycles of cases and tasks (`status`).
They read the store's tables where a rule is a query; they know nothing of
SpiffWorkflow or of the services.
"""
